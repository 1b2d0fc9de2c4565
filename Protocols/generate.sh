#!/usr/bin/env bash
# Regenerates Protocols/Generated from Protocols/*.proto. Run by hand after editing a .proto file;
# never in CI (building the plugins takes about 10 minutes on 2 cores). Needs Debian's protobuf-compiler.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch="$root/.build-protoc"
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
cd "$root"
swift build --scratch-path "$scratch" --product protoc-gen-swift
swift build --scratch-path "$scratch" --product protoc-gen-grpc-swift-2
bin=$(swift build --scratch-path "$scratch" --show-bin-path)
protoc --proto_path="$root/Protocols" \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
  --swift_out="$root/Protocols/Generated" --swift_opt=Visibility=Public,UseAccessLevelOnImports=true \
  --grpc-swift_out="$root/Protocols/Generated" --grpc-swift_opt=Visibility=Public,UseAccessLevelOnImports=true \
  "$root"/Protocols/*.proto
echo "generated into Protocols/Generated"
