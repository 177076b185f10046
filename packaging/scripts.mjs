// Install/upgrade/remove scripts for the legacy RPM and the .deb. Both do the same: enable on the
// first install (start nothing: the config needs the admin's pools first), try-restart what runs on
// an upgrade (the fencer only if the new binary accepts the config: otherwise the running fencer
// keeps guarding the pools with the old code), stop and disable on removal, keep the config. The
// upgrade's restart is always the NEW package's: the .deb's postinst configure, the RPM's %posttrans.
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

/**
 * After a restart, is the service still up? Sampled twice, 2 s and 5 s after the restart: the same
 * process both times (systemd: MainPID with ActiveState=active/SubState=running; upstart: the job's
 * process; SysV: the process the init script finds), or it is not running. A new binary that passes
 * check-config but exits at start (or crash-loops under Restart=/respawn) gives no sample or two
 * different ones; a restart command that reports success says nothing about that.
 */
const SETTLED = `brick_settled() {
    sleep 2
    brick_a=$(brick_sample $1)
    sleep 3
    brick_b=$(brick_sample $1)
    [ -n "$brick_a" ] && [ "$brick_a" = "$brick_b" ]
}`;

const SAMPLE = {
  systemd: `brick_sample() {
    brick_s=$(systemctl show -p MainPID -p ActiveState -p SubState $1.service 2>/dev/null || :)
    case $brick_s in *MainPID=0*|'') return 0 ;; esac
    case $brick_s in *ActiveState=active*) ;; *) return 0 ;; esac
    case $brick_s in *SubState=running*) echo "$brick_s" ;; esac
}
brick_was_running() {
    case $(systemctl is-active $1.service 2>/dev/null || :) in active|activating|reloading|deactivating) return 0 ;; esac
    return 1
}`,
  upstart: `brick_sample() { /sbin/initctl status $1 2>/dev/null | grep 'start/running, process' || :; }`,
  sysv: `brick_sample() { /etc/rc.d/init.d/$1 status 2>/dev/null | grep 'is running (pid' || :; }`,
};

/** Where the admin sees why a service did not stay up. */
const WHY = {
  systemd: (s) => `journalctl -u ${s}.service -n 50 (and systemctl status ${s})`,
  upstart: (s) => `/var/log/${s}.log (and initctl status ${s})`,
  sysv: (s) => `/var/log/${s}.log${s === 'brick-fencer' ? " and init's 'respawning too fast' lines in /var/log/messages" : ''} (and service ${s} status)`,
};

const RESTART_CMD = {
  systemd: (s) => `systemctl restart ${s}`,
  upstart: (s) => `initctl restart ${s}`,
  sysv: (s) => `service ${s} restart`,
};

/**
 * Restart one service that ran before the upgrade and check that it stays up (brick_failed names
 * those that did not). \`restart\` is the init's restart command for $1.
 */
const restartChecked = (init, service, restart) => `if ${restart}; then
    if ! brick_settled ${service}; then
        brick_failed="$brick_failed ${service}"
        echo "brick: ERROR: ${service} is NOT running after the upgrade: the new /usr/bin/brick accepted the config but ${service} did not stay up (it exited, or keeps restarting)${service === 'brick-fencer' ? '; the pools are NOT guarded' : ''}. See why: ${WHY[init](service)}" >&2
    fi
else
    brick_failed="$brick_failed ${service}"
    echo "brick: ERROR: restarting ${service} failed${service === 'brick-fencer' ? '; the pools are NOT guarded' : ''}. See why: ${WHY[init](service)}" >&2
fi`;

/**
 * systemd: a unit that runs is restarted and checked; one that does not but is named in
 * $brick_pending (the .deb: the last failed configure left it; the RPM: it ran when %pre looked) is
 * started and checked; any other is only try-restarted (which starts nothing).
 */
const systemdService = (s) => `if brick_was_running ${s}; then
${restartChecked('systemd', s, `systemctl try-restart ${s}.service >/dev/null 2>&1`)}
elif case " $brick_pending " in *" ${s} "*) true ;; *) false ;; esac; then
${restartChecked('systemd', s, `systemctl restart ${s}.service >/dev/null 2>&1`)}
else
    systemctl try-restart ${s}.service >/dev/null 2>&1 || ${restartFailed(s, `systemctl status ${s}`)}
fi`;

/**
 * The agent is restarted (and checked) first: a new binary that cannot keep it up is not trusted
 * with the fencer, which then keeps running the previous version and keeps guarding its pools.
 */
const heldFencer = (init) => `echo "brick: brick-fencer was NOT restarted: it keeps running the previous version (its pools stay guarded) until the agent runs on the new one. After the fix run: ${RESTART_CMD[init]('brick-agent')}; ${RESTART_CMD[init]('brick-fencer')}" >&2`;

/**
 * Try-restart what runs (upgrade), only once the new binary has accepted the config, and check that
 * what ran before runs after. \`failed\` is the shell run when a service that ran did not come back
 * (the .deb: fail postinst; the RPMs: scriptlets do not fail by rpm's convention, and a failing
 * %postun is only a warning to rpm, so the ERROR lines say it).
 * \`pending\` (the .deb) is a file that keeps the names of such services across the failure: the
 * next \`postinst configure\` (dpkg --configure -a, or the fixed version) starts them even though
 * they are no longer running (a unit that failed is not try-restarted).
 */
export const tryRestart = ({ failed = '', pending = '' } = {}) => `${DETECT}
if [ "$brick_init" = systemd ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
if brick_problems=$(${CHECK} 2>&1 >/dev/null); then
brick_failed=
${SETTLED}
case $brick_init in
systemd)
${SAMPLE.systemd}
    brick_pending=${pending ? `$(cat ${pending} 2>/dev/null || :)` : ''}
${systemdService('brick-agent')}
if [ -n "$brick_failed" ]; then
    if brick_was_running brick-fencer; then ${heldFencer('systemd')}; fi
else
${systemdService('brick-fencer')}
fi
    ;;
upstart)
${SAMPLE.upstart}
    if /sbin/initctl status brick-agent 2>/dev/null | grep -q running; then
${restartChecked('upstart', 'brick-agent', '/sbin/initctl restart brick-agent >/dev/null 2>&1')}
    fi
    if /sbin/initctl status brick-fencer 2>/dev/null | grep -q running; then
        if [ -n "$brick_failed" ]; then ${heldFencer('upstart')}
        else
${restartChecked('upstart', 'brick-fencer', '/sbin/initctl restart brick-fencer >/dev/null 2>&1')}
        fi
    fi
    ;;
sysv)
${SAMPLE.sysv}
    if /etc/rc.d/init.d/brick-agent status >/dev/null 2>&1; then
${restartChecked('sysv', 'brick-agent', '/etc/rc.d/init.d/brick-agent try-restart >/dev/null 2>&1')}
    fi
    if /etc/rc.d/init.d/brick-fencer status >/dev/null 2>&1; then
        if [ -n "$brick_failed" ]; then ${heldFencer('sysv')}
        else
${restartChecked('sysv', 'brick-fencer', '/etc/rc.d/init.d/brick-fencer try-restart >/dev/null 2>&1')}
        fi
    fi
    ;;
esac
${pending ? `if [ -n "$brick_failed" ]; then echo "$brick_failed" >${pending}; else rm -f ${pending}; fi` : ''}
if [ -n "$brick_failed" ]; then
${failed}
:
fi
else
case $brick_init in
systemd) ${notRestarted('systemctl restart brick-agent brick-fencer')} ;;
upstart) ${notRestarted('initctl restart brick-agent; initctl restart brick-fencer')} ;;
sysv) ${notRestarted('service brick-agent restart; service brick-fencer restart')} ;;
esac
fi`;

// The RPMs alone. rpm runs the OLD package's %postun after an upgrade (new %pre, new files, new %post,
// old %preun, old %postun, then the new %posttrans), so a restart in %postun is always the previous
// version's logic: the new package restarts in its %posttrans instead. %posttrans has no $1: %pre
// ($1 >= 2, an upgrade) leaves RPM_MARKER, which also tells the outgoing package's %postun not to
// restart (one from before this, a downgrade to it, leaves none: then %postun restarts as it used to).

/** Fedora's place for state between the scriptlets of one transaction, and the marker in it. */
export const RPM_STATE_DIR = '/var/lib/rpm-state/brick';
export const RPM_MARKER = `${RPM_STATE_DIR}/restart-after-upgrade`;

/**
 * %pre of an upgrade: RPM_MARKER, naming (systemd) the units that run before anything changes. If it
 * cannot be written, there is none and the outgoing package's %postun restarts (with its checks).
 */
export const recordRunning = `${DETECT}
brick_running=
if [ "$brick_init" = systemd ]; then
    for brick_svc in brick-agent brick-fencer; do
        case $(systemctl is-active $brick_svc.service 2>/dev/null || :) in active|activating|reloading|deactivating) brick_running="$brick_running $brick_svc" ;; esac
    done
fi
if ! { mkdir -p ${RPM_STATE_DIR} && echo "$brick_running" >${RPM_MARKER}; } 2>/dev/null; then
    rm -f ${RPM_MARKER}
    echo "brick: WARNING: cannot write ${RPM_MARKER}: the previous version's scriptlet restarts brick-agent and brick-fencer, with its own checks" >&2
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
