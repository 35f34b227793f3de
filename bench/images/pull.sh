#!/usr/bin/env bash
# Side-by-side: pull a >= 50 MiB, 5-layer image built from Debian's own files from a local
# docker-registry (127.0.0.1, plain HTTP), two ways: download+verify (`shoal-image pull
# --no-unpack` vs `skopeo copy docker://... oci:...`) and download+verify+unpack (`shoal-image
# pull` vs skopeo copy followed by `tar -xzf` of each layer); then layer unpack speed: shoal's
# ExtractLayer vs GNU `tar -xzf`. Root only (unpack preserves owners).
# Usage: bench/images.sh [build-dir]     Prints RESULT lines (DESIGN.md §8).
set -euo pipefail
BUILD=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build}
SHOAL_IMAGE=$BUILD/runtime/images/tool/shoal-image
UNPACK=$BUILD/bench/images/images_unpack_bench
for b in "$SHOAL_IMAGE" "$UNPACK"; do
  [[ -x $b ]] || { echo "missing $b (build shoal-image images_unpack_bench)" >&2; exit 1; }
done
for t in docker-registry skopeo tar sha256sum; do
  command -v $t >/dev/null || { echo "peer tool $t missing (scripts/setup)" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }

W=$(mktemp -d /tmp/shoaltest-img-bench-XXXXXX)
REG_PID=
cleanup() { [[ -n $REG_PID ]] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

echo "machine: nproc=$(nproc) kernel=$(uname -r)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat >"$W/config.yml" <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/data}}
http: {addr: $HOST}
CFG
docker-registry serve "$W/config.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fs "http://$HOST/v2/" >/dev/null && break; sleep 0.1; done

# --- build the image: 5 gzip layers from Debian package files
mkdir -p "$W/oci/blobs/sha256"
layers_json=""; diff_ids=""; total=0
add_layer() {  # $1 = name, rest = paths
  local name=$1; shift
  tar -C / -cf "$W/$name.tar" "$@" 2>/dev/null || true
  gzip -1 -c "$W/$name.tar" >"$W/$name.tar.gz"
  local diff blob size
  diff=$(sha256sum "$W/$name.tar" | cut -d' ' -f1)
  blob=$(sha256sum "$W/$name.tar.gz" | cut -d' ' -f1)
  size=$(stat -c %s "$W/$name.tar.gz")
  total=$((total + size))
  cp "$W/$name.tar.gz" "$W/oci/blobs/sha256/$blob"
  layers_json+="${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$blob\",\"size\":$size}"
  diff_ids+="${diff_ids:+,}\"sha256:$diff\""
}
add_layer l1 usr/lib/x86_64-linux-gnu/perl usr/lib/x86_64-linux-gnu/gconv
add_layer l2 usr/lib/python3.11
add_layer l3 usr/lib/x86_64-linux-gnu/dri
add_layer l4 usr/share/perl usr/share/zoneinfo
add_layer l5 usr/lib/python3
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}}"
printf '%s' "$config" >"$W/config.json"
cdig=$(sha256sum "$W/config.json" | cut -d' ' -f1)
cp "$W/config.json" "$W/oci/blobs/sha256/$cdig"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":$(stat -c %s "$W/config.json")},\"layers\":[$layers_json]}"
printf '%s' "$manifest" >"$W/manifest.json"
mdig=$(sha256sum "$W/manifest.json" | cut -d' ' -f1)
cp "$W/manifest.json" "$W/oci/blobs/sha256/$mdig"
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/oci/oci-layout"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdig\",\"size\":$(stat -c %s "$W/manifest.json"),\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" >"$W/oci/index.json"
skopeo copy --quiet --dest-tls-verify=false "oci:$W/oci:v1" "docker://$HOST/bench/debian:v1"
echo "image: 5 layers, $((total / 1048576)) MiB compressed, $HOST/bench/debian:v1"
((total >= 50 * 1048576)) || { echo "image smaller than 50 MiB" >&2; exit 1; }

now() { date +%s.%N; }
median() { sort -g | sed -n 2p; }
PULL="$SHOAL_IMAGE --root $W/store -q --insecure-registry $HOST pull"
SHOAL_DL="$PULL --no-unpack $HOST/bench/debian:v1"
SHOAL_FULL="$PULL $HOST/bench/debian:v1"
SKOPEO_CMD="skopeo copy --quiet --src-tls-verify=false docker://$HOST/bench/debian:v1 oci:$W/skopeo:v1"
# Peer for pull+unpack: skopeo, then GNU tar unpacks every layer into its own directory.
skopeo_unpack() {
  $SKOPEO_CMD
  local i=0
  for l in $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(x["digest"][7:] for x in m["layers"]))' "$W/oci/blobs/sha256/$mdig"); do
    i=$((i + 1)); mkdir -p "$W/skopeo-unpack/$i"
    tar -C "$W/skopeo-unpack/$i" --same-owner -xpzf "$W/skopeo/blobs/sha256/$l"
  done
}
echo "download:        shoal: $SHOAL_DL"
echo "                 peer:  $SKOPEO_CMD"
echo "download+unpack: shoal: $SHOAL_FULL"
echo "                 peer:  $SKOPEO_CMD; tar --same-owner -xpzf <each layer> -C <dir per layer>"
fresh() { rm -rf "$W/store" "$W/skopeo" "$W/skopeo-unpack"; sync; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); echo "($t1 - $t0) * 1000" | bc -l; }
dl_s=(); dl_p=(); full_s=(); full_p=()
for i in 1 2 3; do
  fresh; dl_s+=("$(timed $SHOAL_DL)")
  fresh; dl_p+=("$(timed $SKOPEO_CMD)")
  fresh; full_s+=("$(timed $SHOAL_FULL)")
  fresh; full_p+=("$(timed skopeo_unpack)")
done
mib=$((total / 1048576))
for pair in "image_pull_${mib}MiB_5layers dl_s dl_p skopeo" \
            "image_pull_unpack_${mib}MiB_5layers full_s full_p skopeo+tar"; do
  read -r name sv pv peer <<<"$pair"
  declare -n sa=$sv pa=$pv
  s=$(printf '%s\n' "${sa[@]}" | median); p=$(printf '%s\n' "${pa[@]}" | median)
  printf 'RESULT %s shoal=%.0fms %s=%.0fms ratio=%.2f\n' "$name" "$s" "$peer" "$p" \
    "$(echo "$s / $p" | bc -l)"
done

# --- unpack speed of the biggest layer: shoal ExtractLayer vs GNU tar (both from tar.gz)
big=$(ls -S "$W"/l?.tar.gz | head -1)
mib=$(echo "$(stat -c %s "${big%.gz}") / 1048576" | bc -l)
fresh
su=$($UNPACK "$big" "$W/unpack" 3)
best_tar=0
for i in 1 2 3; do
  mkdir -p "$W/tar$i"; t0=$(now); tar -C "$W/tar$i" --same-owner -xpzf "$big"; t1=$(now)
  r=$(echo "$mib / ($t1 - $t0)" | bc -l); rm -rf "$W/tar$i"
  (( $(echo "$r > $best_tar" | bc -l) )) && best_tar=$r
done
echo "unpack: $UNPACK $big (best of 3) vs tar --same-owner -xpzf (best of 3), $(printf %.0f "$mib") MiB tar"
printf 'RESULT layer_unpack_gzip shoal=%.1fMiB/s tar=%.1fMiB/s ratio=%.2f\n' "$su" "$best_tar" \
  "$(echo "$su / $best_tar" | bc -l)"
