#!/usr/bin/env bash
# Builds the Debian package byst_<version>_<arch>.deb with dpkg-deb (docs/OPERATIONS.md, "Install"):
#
#   /usr/bin/byst                         release build, Swift runtime and Foundation linked in
#                                         (--static-swift-stdlib), stripped
#   /lib/systemd/system/byst@.service     deploy/byst@.service, deploy/byst-registry@.service,
#   …/byst-registry@.service              with /usr/bin/byst and the packaged docs' paths
#   /usr/share/man/man8/byst*.8.gz        generated now from the argument parser (its generate-manual
#                                         tool run on the binary): byst(8), byst.key.gen(8), …
#   bash, zsh, fish completions           generated now by `byst --generate-completion-script`
#   /usr/share/doc/byst/                  README, docs/*.md, examples/*.toml, copyright (with the
#                                         licences of what the binary links in), changelog
#   postinst, postrm                      deploy/debian/: /etc/byst 0700 if missing, nothing started
#
# Depends: is computed by dpkg-shlibdeps from the binary's NEEDED entries (objdump -p); a Swift
# library among them is refused. Then lintian checks the .deb: any error or warning fails, except
# the tags overridden in deploy/debian/lintian-overrides, each with its reason.
#
#   bash scripts/package.sh [--output DIR]
#
# --output: where the .deb goes (default: the checkout's root). BYST_MAINTAINER ("Name <address>")
# sets the control file's Maintainer and the changelog's signature. A cold release build takes
# ~10 minutes on 2 cores; after that, packaging takes about a minute (lintian most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
output=$root
while [ $# -gt 0 ]; do
    case $1 in
        --output) [ $# -ge 2 ] || { echo "package: --output needs a directory" >&2; exit 64; }; output=$(realpath "$2"); shift 2 ;;
        *) echo "package: unknown argument '$1' (usage: scripts/package.sh [--output DIR])" >&2; exit 64 ;;
    esac
done
[ -d "$output" ] || { echo "package: output directory $output does not exist" >&2; exit 1; }
maintainer=${BYST_MAINTAINER:-BYST developers <dev@byst.invalid>}

source scripts/setup.sh
byst_setup build package
umask 022

# --- The binary -----------------------------------------------------------------------------
# The Swift runtime and Foundation go into the binary, so the gateway needs no toolchain;
# no $ORIGIN rpath (nothing is looked up next to /usr/bin/byst); full RELRO and BIND_NOW.
echo "package: building byst (release, static Swift stdlib)"
byst_build release --product byst --static-swift-stdlib --disable-local-rpath \
    -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now
built=$(swift build -c release --show-bin-path)/byst
[ -x "$built" ] || { echo "package: no binary at $built" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage/DEBIAN" "$stage/usr/bin"

install -m 0755 "$built" "$stage/usr/bin/byst"
# What dh_strip does: no symbol tables, no .comment/.note (the build id stays).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/byst"
bin=$stage/usr/bin/byst

needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }')
echo "package: NEEDED:" $needed
if grep -qiE 'swift|Foundation|dispatch|BlocksRuntime|icu' <<<"$needed"; then
    echo "package: the binary still needs a Swift runtime library (static Swift stdlib did not take): $needed" >&2
    exit 1
fi
if objdump -p "$bin" | grep -qE '^\s*(RPATH|RUNPATH)'; then
    echo "package: the binary has an rpath:" >&2; objdump -p "$bin" | grep -E 'RPATH|RUNPATH' >&2; exit 1
fi

version=$("$bin" --version)
[[ $version =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || { echo "package: 'byst --version' printed '$version', not a version" >&2; exit 1; }
arch=$(dpkg --print-architecture)
# Dates in the package (man pages, changelog, file times) are the commit's, so two builds
# of one commit give the same files.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi

# --- Man pages: the argument parser's own generator, on this binary -------------------------
# swift-argument-parser's `generate-manual` plugin builds every product of the package in release
# mode first (the benchmarks too, and without --static-swift-stdlib); its tool is built here
# from the same pinned checkout instead and run on the binary being packaged.
echo "package: man pages"
parser=$root/.build/checkouts/swift-argument-parser
[ -f "$parser/Tools/generate-manual/GenerateManual.swift" ] || { echo "package: $parser has no generate-manual tool" >&2; exit 1; }
swift build --package-path "$parser" --scratch-path "$root/.build/generate-manual" --product generate-manual >"$work/generate-manual.log" 2>&1 \
    || { cat "$work/generate-manual.log" >&2; echo "package: building generate-manual failed" >&2; exit 1; }
generate_manual=$(swift build --package-path "$parser" --scratch-path "$root/.build/generate-manual" --show-bin-path)/generate-manual
mkdir -p "$work/man" "$stage/usr/share/man/man8"
"$generate_manual" "$bin" --multi-page --section 8 --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" --output-directory "$work/man"
# The generator names a subcommand's page byst.key.gen(8) with NAME "byst key gen", which
# whatis/lexgrog cannot index; renamed the git way: byst-key-gen(8), NAME byst-key-gen, the
# SYNOPSIS still `byst key gen …`, SEE ALSO entries to match.
for page in "$work/man"/*.8; do
    command=$(basename "$page" .8)            # byst.key.gen
    name=${command//./-}                       # byst-key-gen
    sed -e '/^\.\(Dt\|Xr\) /{:a;s/\([A-Za-z0-9]\)\.\([A-Za-z0-9]\)/\1-\2/;ta}' \
        -e "0,/^\.Nm .*\$/s//.Nm $name/" -e "s/^\.Nm\$/.Nm ${command//./ }/" "$page" |
        gzip -9n >"$stage/usr/share/man/man8/$name.8.gz"
    whatis=$(lexgrog "$stage/usr/share/man/man8/$name.8.gz" 2>&1) || { echo "package: $name.8: $whatis" >&2; exit 1; }
done
[ -f "$stage/usr/share/man/man8/byst.8.gz" ] || { echo "package: no byst.8 generated" >&2; exit 1; }

# --- Shell completions ------------------------------------------------------------------------
mkdir -p "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
# Sourced by bash-completion, not run: no #! line.
"$bin" --generate-completion-script bash | sed '1{/^#!/d}' >"$stage/usr/share/bash-completion/completions/byst"
"$bin" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_byst"
"$bin" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/byst.fish"
for file in "$stage"/usr/share/bash-completion/completions/byst "$stage"/usr/share/zsh/vendor-completions/_byst \
            "$stage"/usr/share/fish/vendor_completions.d/byst.fish; do
    [ -s "$file" ] || { echo "package: empty completion script $file" >&2; exit 1; }
done

# --- systemd units ----------------------------------------------------------------------------
# The deploy/ units with the packaged paths; their "install by hand" comment lines dropped.
mkdir -p "$stage/lib/systemd/system"
for unit in byst@.service byst-registry@.service; do
    case $unit in byst@.service) page=byst-up ;; *) page=byst-registry-serve ;; esac
    sed -e 's|/usr/local/bin/byst|/usr/bin/byst|g' \
        -e "s|^Documentation=file:///usr/local/share/doc/byst/OPERATIONS.md$|Documentation=man:$page(8) file:///usr/share/doc/byst/OPERATIONS.md.gz|" \
        -e '/^#   install -m/d' -e 's|^# Install:$|# Installed by the byst Debian package; enable an instance:|' \
        -e 's|^\(#.*\)by hand:$|\1enable an instance:|' \
        "deploy/$unit" >"$stage/lib/systemd/system/$unit"
    grep -q '^ExecStart=/usr/bin/byst ' "$stage/lib/systemd/system/$unit" || { echo "package: $unit: ExecStart not rewritten" >&2; exit 1; }
    grep -q '/usr/local' "$stage/lib/systemd/system/$unit" && { echo "package: $unit still names /usr/local" >&2; exit 1; }
    if command -v systemd-analyze >/dev/null 2>&1; then
        # Instances need a config file, the binary at /usr/bin and the man pages installed:
        # only syntax problems are shown (they do not fail the build).
        systemd-analyze verify "$stage/lib/systemd/system/$unit" 2>&1 |
            grep -vE "/usr/bin/byst|is not executable|Command 'man |not found|No such file" >&2 || true
    fi
done

# --- Documentation ----------------------------------------------------------------------------
doc=$stage/usr/share/doc/byst
mkdir -p "$doc/examples"
install -m 0644 README.md docs/*.md "$doc/"
install -m 0644 deploy/examples/*.toml "$doc/examples/"
for file in "$doc"/*.md; do gzip -9n "$file"; done   # Debian policy 12.3: compress what is large

{
    echo "byst ($version) unstable; urgency=medium"
    echo
    echo "  * Built from commit $commit by scripts/package.sh."
    echo
    echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"

# Copyright: BYST's own terms, then every component the binary links in, with its licence.
python3 -c 'import json, sys
for pin in json.load(open(sys.argv[1]))["pins"]:
    print(pin["identity"], pin["location"], pin["state"].get("version") or pin["state"].get("revision"), sep="\t")' \
    Package.resolved >"$work/pins"
# A licence file as the copyright file gives it: the Apache 2.0 text by reference to
# /usr/share/common-licenses (Debian policy 12.5), what follows it (Swift's Runtime Library
# Exception) in full; any other licence in full.
license_text() {
    if grep -q 'Apache License' "$1" && grep -q 'Version 2.0, January 2004' "$1" && grep -q 'END OF TERMS AND CONDITIONS' "$1"; then
        echo "Apache License, Version 2.0: /usr/share/common-licenses/Apache-2.0"
        awk 'after { print } /APPENDIX: How to apply the Apache License/ { appendix = 1 } appendix && /limitations under the License\./ { after = 1 }' "$1" |
            sed -e '/./,$!d'
    else
        cat "$1"
    fi
}
toolchain_license=$(dirname "$(dirname "$(command -v swift)")")/share/swift/LICENSE.txt
[ -f "$toolchain_license" ] || { echo "package: no toolchain licence at $toolchain_license" >&2; exit 1; }
{
    cat deploy/debian/copyright
    echo
    echo "Swift runtime, standard library and Foundation ($(swift --version 2>/dev/null | head -1)),"
    echo "linked into /usr/bin/byst with --static-swift-stdlib:"
    echo
    license_text "$toolchain_license" | sed -e 's/^/  /' -e 's/^ *$/  ./'
    while IFS=$'\t' read -r identity location pinned; do
        checkout=$(find "$root/.build/checkouts" -mindepth 1 -maxdepth 1 -iname "$identity" | head -1)
        [ -n "$checkout" ] || { echo "package: no checkout of $identity under .build/checkouts" >&2; exit 1; }
        echo
        echo "$identity $pinned ($location):"
        echo
        find "$checkout" -path '*/.git' -prune -o -type f \( -iname 'LICENSE*' -o -iname 'NOTICE*' -o -iname 'COPYING*' \) -print | sort |
        while read -r file; do
            echo "  ${file#"$root"/.build/checkouts/}:"
            license_text "$file" | sed -e 's/^/    /' -e 's/^ *$/    ./'
        done
    done <"$work/pins"
} >"$doc/copyright"
chmod 0644 "$doc/copyright"

# --- Control files ----------------------------------------------------------------------------
install -m 0644 deploy/debian/lintian-overrides -D "$stage/usr/share/lintian/overrides/byst"
install -m 0755 deploy/debian/postinst deploy/debian/postrm "$stage/DEBIAN/"

# Depends: from the libraries the binary needs, as dpkg-shlibdeps maps them to Debian packages
# (it fails for a library no installed package provides).
mkdir -p "$work/shlibs/debian"
printf 'Source: byst\n\nPackage: byst\nArchitecture: any\n' >"$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$bin" 2>"$work/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p') \
    || { cat "$work/shlibdeps.log" >&2; echo "package: dpkg-shlibdeps failed" >&2; exit 1; }
[ -n "$depends" ] || { cat "$work/shlibdeps.log" >&2; echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
echo "package: Depends: $depends"

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: byst
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: net
Priority: optional
Description: secure multi-link tunnel / VPN for Linux gateways
 BYST nodes authenticate each other with pre-shared keys through a Noise
 handshake, then carry AEAD-encrypted records over several parallel TCP
 links that share reliable streams (port forwards) and IP packets (TUN
 interfaces routing whole subnets). The records also travel inside HTTP/1.1
 bodies, optionally over TLS, so branch offices behind web proxies reach
 headquarters. Gateways in several data centres fail over through a port
 registry (embedded, or etcd).
 .
 This package ships the byst command, the systemd templates byst@.service
 (byst up -c /etc/byst/NAME.toml) and byst-registry@.service (byst registry
 serve), manual pages and shell completions. Nothing starts on install.
CONTROL

(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/md5sums"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$output/byst_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "package: $deb ($(du -h "$deb" | cut -f1); installed $installed_size KiB)"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

# --- lintian ----------------------------------------------------------------------------------
# Fails on errors and warnings; info and pedantic tags are listed. Overrides, each with its
# reason: deploy/debian/lintian-overrides (shipped as /usr/share/lintian/overrides/byst).
echo "package: lintian $(lintian --version | awk '{print $2}')"
if ! lintian --fail-on error,warning --display-info "$deb"; then
    echo "package: lintian found errors or warnings in $deb" >&2
    exit 1
fi
echo "package: lintian: no errors or warnings; overridden, with reasons in deploy/debian/lintian-overrides:" \
    $(grep -vE '^(#|$)' deploy/debian/lintian-overrides | cut -d' ' -f1)
echo "package: done: $deb"
