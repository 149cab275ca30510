#!/bin/sh
# Stand-in sources for every target Cargo.toml names (the library, the binary, the benches),
# so that the image's first build step compiles the dependencies alone, in a layer that only a
# change to Cargo.toml or Cargo.lock invalidates. Run in the directory holding Cargo.toml.
set -eu
mkdir -p src benches
echo 'fn main() {}' > src/main.rs
: > src/lib.rs
sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"$/\1/p' Cargo.toml | while read -r bench; do
    echo 'fn main() {}' > "benches/$bench.rs"
done
