// Install/upgrade/remove scripts for the legacy RPM and the .deb. Both do the same: enable on the
// first install (start nothing: the config needs the admin's pools first), try-restart what runs on
// an upgrade (the fencer only if the new binary accepts the config: otherwise the running fencer
// keeps guarding the pools with the old code), stop and disable on removal, keep the config.
// Each init is detected on the host: systemd (EL7, Debian/Ubuntu), upstart (OL6), SysV (OL5).

const DETECT = `brick_init=sysv
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then brick_init=systemd
elif [ -x /sbin/initctl ] && /sbin/initctl version 2>/dev/null | grep -q upstart; then brick_init=upstart
fi`;

const FENCER_OK = `/usr/bin/brick check-config --config /etc/brick/brick.toml >/dev/null 2>&1`;
const FENCER_KEPT = `echo "brick: the new /usr/bin/brick does not accept /etc/brick/brick.toml (see: brick check-config); brick-fencer keeps running the previous version until you fix that and restart it" >&2`;

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

/** Try-restart what runs (upgrade). */
export const tryRestart = `${DETECT}
case $brick_init in
systemd)
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl try-restart brick-agent.service >/dev/null 2>&1 || :
    if ${FENCER_OK}; then systemctl try-restart brick-fencer.service >/dev/null 2>&1 || :; else ${FENCER_KEPT}; fi
    ;;
upstart)
    if /sbin/initctl status brick-agent 2>/dev/null | grep -q running; then /sbin/initctl restart brick-agent >/dev/null 2>&1 || :; fi
    if /sbin/initctl status brick-fencer 2>/dev/null | grep -q running; then
        if ${FENCER_OK}; then /sbin/initctl restart brick-fencer >/dev/null 2>&1 || :; else ${FENCER_KEPT}; fi
    fi
    ;;
sysv)
    /etc/rc.d/init.d/brick-agent try-restart >/dev/null 2>&1 || :
    if ${FENCER_OK}; then /etc/rc.d/init.d/brick-fencer try-restart >/dev/null 2>&1 || :; else ${FENCER_KEPT}; fi
    ;;
esac`;

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
