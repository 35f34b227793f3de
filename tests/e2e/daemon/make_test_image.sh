#!/usr/bin/env bash
# make_test_image.sh OUT.tar NAME:TAG: a `docker save` tarball of the busybox test rootfs
# (scripts/mkimage) with one layer and Cmd ["sleep","1000"], for `shoal-image import`.
set -euo pipefail
out=${1:?usage: make_test_image.sh OUT.tar NAME:TAG}
tag=${2:?usage: make_test_image.sh OUT.tar NAME:TAG}
src=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d /tmp/dc-img-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$src/scripts/mkimage" "$work/rootfs" /bin/true >/dev/null
mkdir -p "$work/save/layer"
(cd "$work/rootfs" && tar -cf "$work/save/layer/layer.tar" .)
diff_id=$(sha256sum "$work/save/layer/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sleep","1000"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" >"$work/save/config.json"
config=$(sha256sum "$work/save/config.json" | cut -d' ' -f1)
mv "$work/save/config.json" "$work/save/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]' "$config" "$tag" \
  >"$work/save/manifest.json"
(cd "$work/save" && tar -cf "$out" .)
