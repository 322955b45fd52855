# shellcheck shell=bash
# kvc test mode "qemu": placeholder on the stages-test branch. The real mode
# (qemu-system with UEFI, console marker, guest agent over virtio-serial, ssh
# through a forwarded port) comes from the stages-build branch and replaces
# this file; until then the mode fails closed.

mode_up() {
  kvc_die "test mode qemu is not available in this kvc build"
}
mode_boot() { return 1; }
mode_check_boot() { return 1; }
mode_check_guest_agent() { return 1; }
mode_check_ssh() { return 1; }
mode_collect_logs() { return 0; }
mode_down() { return 0; }
