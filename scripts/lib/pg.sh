# Sourced by scripts/test and bench/run: a throwaway PostgreSQL cluster from Debian's binaries
# (installed if missing), in a temp dir, Unix socket only, removed on exit. Sets PGTMP, PGPORT
# and exports AUTHARA_TEST_PG_HOST/PORT/USER.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_throwaway_pg() {
  PGBIN="$(pg_bindir || true)"
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    echo "installing PostgreSQL"
    apt_install postgresql >/dev/null
    PGBIN="$(pg_bindir)"
  fi
  PGTMP="$(mktemp -d /tmp/authara-pg.XXXXXX)"
  PGPORT="$(( 20000 + RANDOM % 20000 ))"
  # initdb and pg_ctl refuse to run as root: use the postgres user the package creates.
  run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres "$PGTMP"
  stop_throwaway_pg() {
    run_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGTMP"
  }
  trap stop_throwaway_pg EXIT
  run_pg "$PGBIN/initdb" -D "$PGTMP/data" -U authara --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
  run_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -w -l "$PGTMP/log" start \
    -o "-c listen_addresses='' -k $PGTMP -p $PGPORT -c max_connections=300 $*" >/dev/null
  export AUTHARA_TEST_PG_HOST="$PGTMP" AUTHARA_TEST_PG_PORT="$PGPORT" AUTHARA_TEST_PG_USER=authara
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on socket $PGTMP port $PGPORT"
}
