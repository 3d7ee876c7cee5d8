#!/bin/sh
# ipmi_sim's chassis_control program for a simulated BMC:
#   chassis.sh STATE_DIR PYTHON get|set PARM [VALUE] ...
# "get" is answered here: it comes with every status read, and a shell start costs
# about 2 ms where a Python start costs 30 (50 BMCs on 2 cores felt it). "set" changes
# power, which runs hooks, and goes to labctl.sim.chassis.
state=$1 python=$2 op=$3
shift 3
if [ "$op" != get ]; then
    exec "$python" -S -m labctl.sim.chassis "$state" "$op" "$@"
fi
echo "$(date +%H:%M:%S) get $*" >>"$state/chassis.log"

# On when the node's pid (file named in status_pidfile) is a live process; without
# that file, the power state the BMC last set.
powered() {
    if [ -f "$state/status_pidfile" ]; then
        # read fails at a last line without a newline, yet sets the variable.
        read -r pidfile <"$state/status_pidfile"
        [ -f "$pidfile" ] || return 1
        read -r pid <"$pidfile"
        [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
        read -r stat <"/proc/$pid/stat"
        case "${stat##*) }" in Z* | "") return 1 ;; esac
        return 0
    fi
    power=off
    [ -f "$state/power" ] && read -r power <"$state/power"
    [ "$power" = on ]
}

for parm in "$@"; do
    case "$parm" in
    power)
        if powered; then echo "power:1"; else echo "power:0"; fi
        ;;
    boot)
        current=disk
        [ -f "$state/bootdev" ] && read -r current <"$state/bootdev"
        current=${current:-disk}
        case "$current" in
        pxe) echo "boot:pxe" ;;
        bios) echo "boot:bios" ;;
        none) echo "boot:none" ;;
        *) echo "boot:default" ;;
        esac
        ;;
    *)
        echo "Invalid parameter: $parm"
        exit 1
        ;;
    esac
done
exit 0
