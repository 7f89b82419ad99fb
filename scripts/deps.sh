# Sourced by scripts/run and scripts/test: installs the Debian packages the
# project needs, skipping what is already there so reruns are fast.
conv1d_install_packages() {
  local missing=()
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]})); then
    echo "Installing Debian packages: ${missing[*]}"
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# Build tools and libraries of the library, the CLI and the benchmark.
CONV1D_BUILD_PACKAGES=(g++ cmake ninja-build libhwy-dev libcli11-dev libfmt-dev
  nlohmann-json3-dev)
# What the tests add: GoogleTest and PyTorch (the oracle for end-to-end tests).
CONV1D_TEST_PACKAGES=(googletest libgtest-dev python3 python3-numpy python3-torch libsndfile1-dev)
# Optional comparison libraries for `conv1d bench --compare`.
CONV1D_COMPARE_PACKAGES=(libdnnl-dev python3-torch python3-numpy)
