#!/usr/bin/env bash
# Prints the path of a Python >= 3.12: first on PATH, then among pyenv's versions; fails loudly otherwise.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for candidate in python3.12 python3.13 python3; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  # pyenv's shims answer only for the active version, so a shim that fails here is simply skipped.
  if ok "$path"; then echo "$path"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
if [ -d "$root/versions" ]; then
  for version in $(ls "$root/versions" | sort -V); do
    path="$root/versions/$version/bin/python3"
    if [ -x "$path" ] && ok "$path"; then echo "$path"; exit 0; fi
  done
fi
echo "error: Engine Room needs Python 3.12 or newer; none was found on PATH or under pyenv ($root)." >&2
echo "       Install one (e.g. 'pyenv install 3.12') and run make again." >&2
exit 1
