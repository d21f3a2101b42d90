# Shared by the side environments' scripts (torch_env.sh, onnx_env.sh, beam_env.sh); source it, then:
#   env_ready VENV REQS        prints VENV's interpreter and exits 0 when VENV is installed and newer than REQS
#   env_create VENV REQS PY    (re)creates VENV with interpreter PY, installs REQS, prints VENV's interpreter
env_ready() {
  if [ -f "$1/.installed" ] && [ "$1/.installed" -nt "$2" ]; then
    echo "$1/bin/python"; exit 0
  fi
}

env_create() {
  rm -rf "$1"
  "$3" -m venv "$1"
  "$1/bin/python" -m pip install -q -r "$2" >&2
  touch "$1/.installed"
  echo "$1/bin/python"
}
