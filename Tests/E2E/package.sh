#!/usr/bin/env bash
# The Debian package on a fresh Debian 12: builds the .deb (scripts/package.sh; or takes
# BYST_DEB), makes a minimal bookworm root with debootstrap from the mirror this machine's apt
# uses, installs the .deb there with apt (which fetches its Depends: from that mirror), then
# inside the root: `byst --version`, `byst key gen test --store /tmp/k`, `byst check -c` on
# the packaged example hub config (in its own network namespace: no routes, port 7000 free);
# /etc/byst made 0700 by postinst, man pages, units, completions, docs in place; then
# reinstalling changes nothing; `apt-get purge` keeps /etc/byst while it holds keys.
#
#   bash Tests/E2E/package.sh                                   # builds the package first
#   BYST_DEB=/path/to/byst_0.1.0_amd64.deb bash Tests/E2E/package.sh
#
# Without BYST_DEB it runs scripts/package.sh, whose release build with the static Swift
# runtime shares nothing with the suite's debug build: cold, ~10 minutes on 2 cores (16 under
# load); the rest takes about a minute (debootstrap --variant=minbase ~40 s).
# Network: only debootstrap's and apt's downloads from the machine's configured Debian mirror
# (BYST_DEBIAN_MIRROR overrides it).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, chroot, mount)"
for tool in debootstrap chroot unshare mount umount findmnt mknod dpkg-deb python3; do
    command -v "$tool" >/dev/null || fail "required tool '$tool' not found (Debian package debootstrap and the others: scripts/setup.sh, test group)"
done

work=$(mktemp -d /var/tmp/byst-package-e2e.XXXXXX)
root=$work/root
cleanup() {
    local status=$? target
    # Unmount whatever is mounted below the root (deepest first); never remove a tree that
    # still has a mount in it.
    for target in $(findmnt -rn -o TARGET | grep -F "$work/" | sort -r); do
        umount "$target" || umount -l "$target" || echo "package e2e: cannot unmount $target" >&2
    done
    if findmnt -rn -o TARGET | grep -qF "$work/"; then
        echo "package e2e: mounts remain under $work; not removing it" >&2
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The package -----------------------------------------------------------------------------
if [ -n "${BYST_DEB:-}" ]; then
    deb=$(realpath "$BYST_DEB")
    [ -f "$deb" ] || fail "BYST_DEB=$BYST_DEB: no such file"
else
    mkdir "$work/deb"
    bash scripts/package.sh --output "$work/deb" \
        || fail "scripts/package.sh failed"
    deb=$(echo "$work"/deb/byst_*.deb)
    [ -f "$deb" ] || fail "scripts/package.sh made no .deb in $work/deb"
fi
version=$(dpkg-deb -f "$deb" Version)
echo "package e2e: $deb (version $version, $(du -h "$deb" | cut -f1)); Depends: $(dpkg-deb -f "$deb" Depends)"

# --- A fresh Debian 12 -----------------------------------------------------------------------
# The mirror of the machine's own bookworm sources (deb822 .sources or one-line sources.list).
mirror=${BYST_DEBIAN_MIRROR:-$(python3 - <<'PY'
import glob, re
def blocks():
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for block in re.split(r"\n\s*\n", open(path).read()):
            fields = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace(): continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if fields.get("enabled", ["yes"])[0] == "no": continue
            yield fields.get("types", []), fields.get("uris", []), fields.get("suites", [])
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try: lines = open(path).read().splitlines()
        except OSError: continue
        for line in lines:
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3: yield [words[0]], [words[1]], [words[2]]
for types, uris, suites in blocks():
    if "deb" in types and "bookworm" in suites and uris:
        print(uris[0]); break
PY
)}
[ -n "$mirror" ] || fail "no bookworm mirror in /etc/apt/sources.list*; set BYST_DEBIAN_MIRROR"
echo "package e2e: debootstrap --variant=minbase bookworm from $mirror"
t0=$SECONDS
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    fail "debootstrap from $mirror failed (log above)"
fi
echo "package e2e: debootstrap took $((SECONDS - t0)) s"
mount -t proc proc "$root/proc"
# What udev makes on a real machine; [tun] checks look for it.
mkdir -p "$root/dev/net" && mknod -m 0666 "$root/dev/net/tun" c 10 200
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
# Commands under test get a network namespace of their own: no traffic, no routes, free ports.
in_root_isolated() { unshare --net chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# --- Install -----------------------------------------------------------------------------------
[ ! -e "$root/etc/byst" ] || fail "the fresh root already has /etc/byst"
cp "$deb" "$root/tmp/"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get update in the root failed"; }
in_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" >>"$work/apt.log" 2>&1 \
    || { tail -30 "$work/apt.log" >&2; fail "apt-get install of the .deb in the root failed"; }
grep -E "^(Setting up|Unpacking) " "$work/apt.log" | sed 's/^/  /' || true
in_root dpkg-query -W -f='${Status}\n' byst | grep -q "install ok installed" || fail "byst is not installed in the root"

# --- What the package put there ---------------------------------------------------------------
[ "$(stat -c '%a %U %G' "$root/etc/byst")" = "700 root root" ] \
    || fail "/etc/byst is $(stat -c '%a %U %G' "$root/etc/byst"), want 700 root root (postinst)"
[ -x "$root/usr/bin/byst" ] || fail "no /usr/bin/byst"
zcat "$root/usr/share/man/man8/byst.8.gz" | grep -q '^\.Dt BYST 8' || fail "no byst(8) man page"
for page in byst-up byst-check byst-key-gen byst-registry-serve; do
    [ -f "$root/usr/share/man/man8/$page.8.gz" ] || fail "no $page(8) man page"
done
for unit in byst@.service byst-registry@.service; do
    grep -q '^ExecStart=/usr/bin/byst ' "$root/lib/systemd/system/$unit" || fail "$unit missing or not for /usr/bin/byst"
done
grep -q '^ExecStart=/usr/bin/byst registry serve -c /etc/byst/%i.toml' "$root/lib/systemd/system/byst-registry@.service" \
    || fail "byst-registry@.service does not run byst registry serve"
for file in usr/share/bash-completion/completions/byst usr/share/zsh/vendor-completions/_byst \
            usr/share/fish/vendor_completions.d/byst.fish usr/share/doc/byst/copyright \
            usr/share/doc/byst/OPERATIONS.md.gz usr/share/doc/byst/examples/hub.toml; do
    [ -s "$root/$file" ] || fail "no /$file"
done
if in_root sh -c 'command -v man' >/dev/null; then
    in_root man -w byst >/dev/null || fail "man -w byst finds no page"
fi

# --- Running it --------------------------------------------------------------------------------
got=$(in_root_isolated byst --version) || fail "byst --version failed in the root"
[ "$got" = "$version" ] || fail "byst --version printed '$got', the package is $version"
echo "package e2e: byst --version: $got"

in_root_isolated byst key gen test --store /tmp/k >"$work/keygen.log" 2>&1 || { cat "$work/keygen.log" >&2; fail "byst key gen failed in the root"; }
[ "$(stat -c %a "$root/tmp/k")" = 600 ] || fail "key store /tmp/k is $(stat -c %a "$root/tmp/k"), want 600"
in_root_isolated byst key show test --store /tmp/k >/dev/null || fail "byst key show test: the generated key is not in /tmp/k"
echo "package e2e: byst key gen test --store /tmp/k: ok"

# The packaged example hub config, with its two keys in the default store /etc/byst/keys.
in_root_isolated byst key gen branch-1 >/dev/null || fail "byst key gen branch-1 (into /etc/byst/keys) failed"
in_root_isolated byst key gen branch-2 >/dev/null || fail "byst key gen branch-2 failed"
if ! in_root_isolated byst check -c /usr/share/doc/byst/examples/hub.toml >"$work/check.log" 2>&1; then
    cat "$work/check.log" >&2
    fail "byst check -c /usr/share/doc/byst/examples/hub.toml refused the example config"
fi
grep -q "byst up would start" "$work/check.log" || { cat "$work/check.log" >&2; fail "byst check did not say 'byst up would start'"; }
echo "package e2e: byst check -c /usr/share/doc/byst/examples/hub.toml: byst up would start"
sed 's/^/  /' "$work/check.log"

# --- Reinstall: the maintainer scripts run again and change nothing ---------------------------
in_root dpkg -i "/tmp/$(basename "$deb")" >>"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; fail "reinstalling the .deb failed"; }
[ "$(stat -c '%a %U %G' "$root/etc/byst")" = "700 root root" ] || fail "/etc/byst changed on reinstall"
in_root_isolated byst key show branch-1 >/dev/null || fail "the key store lost branch-1 on reinstall"

# --- Remove, purge -----------------------------------------------------------------------------
in_root apt-get purge -y -q byst >>"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; fail "apt-get purge byst failed"; }
[ ! -e "$root/usr/bin/byst" ] || fail "/usr/bin/byst left after purge"
[ -f "$root/etc/byst/keys" ] || fail "purge removed /etc/byst/keys (the administrator's keys must stay)"

echo "package e2e: ok ($((SECONDS - started)) s)"
