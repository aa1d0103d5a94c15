#!/usr/bin/env bash
# Installs the system clients/servers the device tests need (adb, OpenSSH), and libusb for
# tflite-support's native metadata tools (test only), when absent.
# Needs root (or sudo). Does nothing when everything is there.
set -euo pipefail
need=()
command -v adb >/dev/null 2>&1 || need+=(adb)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
# Test only: tflite-support's native metadata tools (the displayer the TFLite metadata test reads with).
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || need+=(libusb-1.0-0)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
