# The restart after an upgrade, %include'd by brick.spec twice: in %posttrans (the new package's: the
# upgrade's restart) and in %postun (the old package's: only when the incoming package's %pre left no
# /var/lib/rpm-state/brick/restart-after-upgrade, i.e. a version from before %posttrans restarted).
# Like %systemd_postun_with_restart: restart the units that were running (try-restart starts nothing
# that was stopped), but only once the new binary has accepted the config: the units' check-config would
# refuse to start them, and the agent (and the fencer) would be down from then on. Otherwise both keep
# running the previous version and the admin is told why (packaging/scripts.mjs does the same for the
# legacy RPM and the .deb).
# A unit that ran is checked after its restart: the same main PID, active and running, 2 s and 5 s
# after it (a binary that passes check-config and exits at start is not caught by try-restart's
# status). A unit the marker names (it ran when %pre looked) that is not running now (the old package's
# %postun restarted it and it did not come back) is restarted and checked too. The agent goes first:
# if it does not stay up on the new binary, the fencer is not restarted and keeps guarding on the
# previous version. A failure is said as an ERROR; the scriptlet still exits 0: rpm's convention is that
# scriptlets do not fail, and rpm makes a failing %postun or %posttrans only a "scriptlet failed"
# warning (rpm -U exits 0 all the same).
if brick_problems=$(/usr/bin/brick check-config --config /etc/brick/brick.toml 2>&1 >/dev/null); then
    brick_sample() {
        brick_s=$(systemctl show -p MainPID -p ActiveState -p SubState $1.service 2>/dev/null || :)
        case $brick_s in *MainPID=0*|'') return 0 ;; esac
        case $brick_s in *ActiveState=active*) ;; *) return 0 ;; esac
        case $brick_s in *SubState=running*) echo "$brick_s" ;; esac
    }
    brick_settled() {
        sleep 2
        brick_a=$(brick_sample $1)
        sleep 3
        brick_b=$(brick_sample $1)
        [ -n "$brick_a" ] && [ "$brick_a" = "$brick_b" ]
    }
    brick_was_running() {
        case $(systemctl is-active $1.service 2>/dev/null || :) in active|activating|reloading|deactivating) return 0 ;; esac
        return 1
    }
    brick_ran=$(cat /var/lib/rpm-state/brick/restart-after-upgrade 2>/dev/null || :)
    brick_failed=
    for brick_svc in brick-agent brick-fencer; do
        if [ -n "$brick_failed" ]; then
            if brick_was_running $brick_svc; then echo "brick: $brick_svc was NOT restarted: it keeps running the previous version (its pools stay guarded) until the agent runs on the new one. After the fix run: systemctl restart brick-agent; systemctl restart $brick_svc" >&2; fi
            continue
        fi
        brick_guard=
        [ $brick_svc = brick-fencer ] && brick_guard='; the pools are NOT guarded'
        brick_restart=
        if brick_was_running $brick_svc; then
            brick_restart=try-restart
        else
            case " $brick_ran " in *" $brick_svc "*) brick_restart=restart ;; esac
        fi
        if [ -n "$brick_restart" ]; then
            if ! systemctl $brick_restart $brick_svc.service >/dev/null 2>&1; then
                brick_failed=$brick_svc
                echo "brick: ERROR: restarting $brick_svc failed$brick_guard. See why: journalctl -u $brick_svc.service -n 50 (and systemctl status $brick_svc)" >&2
            elif ! brick_settled $brick_svc; then
                brick_failed=$brick_svc
                echo "brick: ERROR: $brick_svc is NOT running after the upgrade: the new /usr/bin/brick accepted the config but $brick_svc did not stay up (it exited, or keeps restarting)$brick_guard. See why: journalctl -u $brick_svc.service -n 50 (and systemctl status $brick_svc)" >&2
            fi
        else
            systemctl try-restart $brick_svc.service >/dev/null 2>&1 || echo "brick: WARNING: restarting $brick_svc failed; see: systemctl status $brick_svc" >&2
        fi
    done
else
    {
        echo "brick: NOT restarting brick-agent and brick-fencer: the new /usr/bin/brick rejects /etc/brick/brick.toml:"
        printf '%s\n' "$brick_problems" | sed 's/^/brick:   /'
        echo "brick: whichever of them runs keeps running the previous version (the fencer keeps guarding its pools), but neither can start again (reboot, crash) until the config is fixed. Fix it (brick check-config), then run: systemctl restart brick-agent brick-fencer"
    } >&2
fi
