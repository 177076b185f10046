// Install/upgrade/remove scripts for the legacy RPM and the .deb. Both do the same: enable on the
// first install (start nothing: the config needs the admin's pools first), try-restart what runs on
// an upgrade (the fencer only if the new binary accepts the config: otherwise the running fencer
// keeps guarding the pools with the old code), stop and disable on removal, keep the config.
// Each init is detected on the host: systemd (EL7, Debian/Ubuntu), upstart (OL6), SysV (OL5).

const DETECT = `brick_init=sysv
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then brick_init=systemd
elif [ -x /sbin/initctl ] && /sbin/initctl version 2>/dev/null | grep -q upstart; then brick_init=upstart
fi`;

const CHECK = `/usr/bin/brick check-config --config /etc/brick/brick.toml`;

/**
 * An upgrade restarts nothing into a config the new binary rejects: the unit's check-config would
 * refuse to start it, and the agent (and the fencer) would be down from then on. They keep running
 * the previous version (it stays in memory; /usr/bin/brick was replaced, not changed in place) and
 * the admin is told, with check-config's own words, what to fix and what to run after.
 */
const notRestarted = (restart) => `{
    echo "brick: NOT restarting brick-agent and brick-fencer: the new /usr/bin/brick rejects /etc/brick/brick.toml:"
    printf '%s\\n' "$brick_problems" | sed 's/^/brick:   /'
    echo "brick: whichever of them runs keeps running the previous version (the fencer keeps guarding its pools), but neither can start again (reboot, crash) until the config is fixed. Fix it (brick check-config), then run: ${restart}"
} >&2`;

/** A restart that failed is said, never swallowed: a fencer left stopped leaves the pools unguarded. */
const restartFailed = (service, status) => `echo "brick: WARNING: restarting ${service} failed${service === 'brick-fencer' ? ' (the pools may be unguarded)' : ''}; see: ${status}" >&2`;

/** Enable (first install). */
export const enable = `${DETECT}
case $brick_init in
systemd)
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/brick.conf >/dev/null 2>&1 || :
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl enable brick-agent.service brick-fencer.service >/dev/null 2>&1 || :
    ;;
upstart)
    # /etc/init/brick-*.conf start at boot by their "start on"; nothing to enable.
    :
    ;;
sysv)
    chkconfig --add brick-agent >/dev/null 2>&1 || :
    # init respawns the fencer from /etc/inittab; read at the next boot or "telinit q".
    if [ -f /etc/inittab ] && ! grep -q '^bkf:' /etc/inittab; then
        cat /usr/share/brick/inittab.line >>/etc/inittab
    fi
    ;;
esac`;

/** Try-restart what runs (upgrade), only once the new binary has accepted the config. */
export const tryRestart = `${DETECT}
if [ "$brick_init" = systemd ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
if brick_problems=$(${CHECK} 2>&1 >/dev/null); then
case $brick_init in
systemd)
    systemctl try-restart brick-agent.service >/dev/null 2>&1 || ${restartFailed('brick-agent', 'systemctl status brick-agent')}
    systemctl try-restart brick-fencer.service >/dev/null 2>&1 || ${restartFailed('brick-fencer', 'systemctl status brick-fencer')}
    ;;
upstart)
    if /sbin/initctl status brick-agent 2>/dev/null | grep -q running; then /sbin/initctl restart brick-agent >/dev/null 2>&1 || ${restartFailed('brick-agent', 'initctl status brick-agent')}; fi
    if /sbin/initctl status brick-fencer 2>/dev/null | grep -q running; then /sbin/initctl restart brick-fencer >/dev/null 2>&1 || ${restartFailed('brick-fencer', 'initctl status brick-fencer')}; fi
    ;;
sysv)
    /etc/rc.d/init.d/brick-agent try-restart >/dev/null 2>&1 || ${restartFailed('brick-agent', 'service brick-agent status')}
    /etc/rc.d/init.d/brick-fencer try-restart >/dev/null 2>&1 || ${restartFailed('brick-fencer', 'service brick-fencer status')}
    ;;
esac
else
case $brick_init in
systemd) ${notRestarted('systemctl restart brick-agent brick-fencer')} ;;
upstart) ${notRestarted('initctl restart brick-agent; initctl restart brick-fencer')} ;;
sysv) ${notRestarted('service brick-agent restart; service brick-fencer restart')} ;;
esac
fi`;

/** Stop and disable (removal); config and state stay. */
export const stopDisable = `${DETECT}
case $brick_init in
systemd)
    systemctl --no-reload disable --now brick-agent.service brick-fencer.service >/dev/null 2>&1 || :
    ;;
upstart)
    /sbin/initctl stop brick-agent >/dev/null 2>&1 || :
    /sbin/initctl stop brick-fencer >/dev/null 2>&1 || :
    ;;
sysv)
    /etc/rc.d/init.d/brick-agent stop >/dev/null 2>&1 || :
    chkconfig --del brick-agent >/dev/null 2>&1 || :
    if [ -f /etc/inittab ] && grep -q '^bkf:' /etc/inittab; then
        sed '/^bkf:/d' /etc/inittab >/etc/inittab.brick-rm && cat /etc/inittab.brick-rm >/etc/inittab && rm -f /etc/inittab.brick-rm
        telinit q >/dev/null 2>&1 || :
    fi
    ;;
esac`;

/** After removal (systemd only): forget the units. */
export const reload = `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload >/dev/null 2>&1 || :; fi`;

// The .deb alone (Debian and Ubuntu run systemd; the .deb ships no upstart or SysV files).
// `prerm remove` writes what it is about to change before it changes anything: each unit with
// `systemctl is-enabled` and `is-active` as they were. When the removal fails after that (dpkg
// then runs `postinst abort-remove`), restoreUnits puts back exactly that: enables what was
// enabled, starts what was running, and starts nothing that was stopped.

/** Record the units' state into `file`; if it cannot be written, fail (exit 1) having changed nothing. */
export const recordUnits = (file) => `brick_state=
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for brick_unit in brick-agent.service brick-fencer.service; do
        brick_state="$brick_state$brick_unit $(systemctl is-enabled $brick_unit 2>/dev/null || :) $(systemctl is-active $brick_unit 2>/dev/null || :)
"
    done
fi
if ! { printf '%s' "$brick_state" >${file}.new && mv -f ${file}.new ${file}; }; then
    echo "brick: cannot write ${file}; nothing was stopped or disabled" >&2
    exit 1
fi`;

/** Put the units back as recordUnits found them; a failure is said, never swallowed. */
export const restoreUnits = (file) => `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    while read -r brick_unit brick_enabled brick_active; do
        case $brick_unit in brick-agent.service|brick-fencer.service) ;; *) continue ;; esac
        if [ "$brick_enabled" = enabled ]; then
            systemctl enable $brick_unit >/dev/null 2>&1 || echo "brick: WARNING: could not enable $brick_unit again; run: systemctl enable $brick_unit" >&2
        fi
        case $brick_active in
        active|activating|reloading)
            systemctl start $brick_unit >/dev/null 2>&1 || echo "brick: WARNING: could not start $brick_unit again; see: systemctl status $brick_unit" >&2
            ;;
        esac
    done <${file}
fi`;

/**
 * The .deb's purge: remove the credentials brick generated in `dir` (server.generate_credentials:
 * the password file, the self-signed certificate and key), and nothing else. brick serve records
 * each file it generates in <dir>/.brick-generated, "sha256  name" (src/agent-extension/credentials.ts);
 * a file named there goes only while its content is still what brick wrote, so a password or a
 * certificate the admin put in its place (or that brick did not make) is kept.
 */
export const purgeGenerated = (dir) => `if [ -f ${dir}/.brick-generated ]; then
    while read -r brick_sum brick_name; do
        case $brick_name in ''|*/*|.*) continue ;; esac
        if [ -f "${dir}/$brick_name" ] && [ ! -L "${dir}/$brick_name" ]; then
            brick_now=$(sha256sum <"${dir}/$brick_name")
            if [ "\${brick_now%% *}" = "$brick_sum" ]; then rm -f "${dir}/$brick_name"; fi
        fi
    done <${dir}/.brick-generated
    rm -f ${dir}/.brick-generated
fi`;
