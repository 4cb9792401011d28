"""Device-manager API under concurrent load: device list, device read, a one-day 1-minute telemetry aggregate,
and the console's fleet overview and devices list (bench.api_console).

`python -m bench.api [--devices 100000] [--rows 10000000] [--keep-db NAME]` seeds its own database (bench.api_seed),
serves the API with gunicorn (gthread workers) and drives each scenario with `wrk` (random URL per request from a
Lua script) for a fixed time. Baselines in the same run: GET /healthz under the same load (the HTTP + WSGI floor) and
the repository/backend call each endpoint makes, timed in-process without HTTP (the SQL floor).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import requests

from bench import api_console, api_energy, api_seed
from bench.summary import percentiles
from tests.support import infra, procs
from tests.support import mqtt as test_mqtt
from tests.support.poll import wait_for
from tests.support.tls import make_tls_files

ROOT = Path(__file__).resolve().parents[1]
DM_DIR = ROOT / "services" / "device-manager"
DOC = ROOT / "docs" / "benchmarks-api.md"
BEGIN, END = "<!-- api-bench:begin -->", "<!-- api-bench:end -->"
ADMIN = ("bench-admin@example.com", "bench-admin-password-1")
LIST_FILTER = {"status": "active", "device_type": "power_meter_dc"}
PAGE_SIZE = 50
BARS_MS = {"healthz": None, "device_list": 100, "device_get": 100, "telemetry_1d_1m": 300,
           api_energy.SCENARIO: api_energy.BAR_MS, **dict.fromkeys(api_console.SCENARIOS, api_console.BAR_MS)}

# wrk: a random path per request from a file; the summary goes out as one JSON line.
WRK_LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local token = os.getenv("BENCH_TOKEN")
local cookie = os.getenv("BENCH_COOKIE")
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
request = function()
  local headers = {}
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  if cookie and cookie ~= "" then headers["Cookie"] = cookie end
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "mean_us": %.1f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    p.add_argument("--devices", type=int, default=100_000, help="devices to seed")
    p.add_argument("--rows", type=int, default=10_000_000, help="telemetry rows (approximate)")
    p.add_argument("--days", type=int, default=10, help="daily partitions the rows are spread over")
    p.add_argument("--keep-db", metavar="NAME", help="seed NAME once and reuse it on later runs (never dropped)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    p.add_argument("--connections", type=int, default=16, help="concurrent HTTP connections")
    p.add_argument("--duration", type=int, default=20, help="seconds of load per scenario")
    p.add_argument("--sql-samples", type=int, default=200, help="in-process calls per scenario for the SQL floor")
    p.add_argument("--scenarios", default=f"healthz,device_get,device_list,telemetry_1d_1m,{api_energy.SCENARIO},"
                                          f"{','.join(api_console.SCENARIOS)}",
                   help="comma-separated scenarios to load, in order")
    p.add_argument("--out", type=Path, default=None, help="JSON result (default bench/out/api-<ts>.json)")
    p.add_argument("--no-doc", action="store_true", help=f"do not rewrite {DOC.relative_to(ROOT)}")
    return p.parse_args(argv)


def prepare_db(args) -> tuple[str, str, dict, bool]:
    """(dsn, name, seed facts, drop_after): reuse a kept, already seeded database or seed a fresh one."""
    name = args.keep_db or f"iothub_apibench_{os.getpid()}"
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    if args.keep_db and _exists(name):
        from iothub.db import migrate

        migrate.apply(dsn)  # new index migrations land on a kept database too
        facts = api_seed.describe(dsn)
        if facts["devices"] == args.devices and facts["query_day"]:
            print(f"reusing {name}: {facts}", flush=True)
            _vacuum_devices(dsn)
            return dsn, name, facts, False
        print(f"{name} holds {facts['devices']} devices, not {args.devices}: seeding it again", flush=True)
        infra.drop_database(name)
    dsn = infra.create_database(name)
    plan = api_seed.make_plan(args.devices, args.rows, days=args.days)
    print(f"seeding {name}: {args.devices:,} devices, ~{plan.expected_rows:,} telemetry rows", flush=True)
    facts = api_seed.seed(dsn, plan)
    print(f"seeded in {facts['timings']['total_s']:.0f} s: {facts}", flush=True)
    _vacuum_devices(dsn)
    return dsn, name, facts, not args.keep_db


def _vacuum_devices(dsn: str) -> None:
    """Set the devices table's visibility map, as autovacuum does on a live system: the list's count and page
    queries are index-only scans only when it is set (seen unset after seeding, and the list then took 3x longer)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) devices")
    finally:
        conn.close()


def _exists(name: str) -> bool:
    conn = psycopg2.connect(infra.PG_ADMIN_DSN)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def start_api(dsn: str, mqtt_port: int, args, workdir: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn with the project's gunicorn.conf.py on a free port, serving HTTPS as deployed; returns (process,
    base URL). This process's requests verify the server against the run's CA (wrk does not verify)."""
    port = procs.free_port()
    prom_dir = workdir / "prometheus"
    prom_dir.mkdir()
    (workdir / "tls").mkdir()
    tls = make_tls_files(workdir / "tls")
    os.environ["REQUESTS_CA_BUNDLE"] = tls.ca
    env = {**os.environ, "IOTHUB_ENV": "development", "DATABASE_URL": dsn, "JWT_SECRET_KEY": "bench-" + "x" * 40,
           "AMQP_URL": infra.AMQP_BASE + "/%2F", "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(mqtt_port),
           "MQTT_CLIENT_ID": "bench-api", "ADMIN_EMAIL": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1],
           "JWT_ACCESS_TOKEN_MINUTES": "240", "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
           "DB_POOL_MAX": str(max(args.threads, 4)), "SERIES_BACKEND": "postgres", "LOG_LEVEL": "INFO",
           "COMMAND_KEY_KEK": "44" * 32, **tls.server_env(),
           # The broker speaks TLS only and knows the command publisher's and the credentials adapter's accounts.
           **test_mqtt.env(test_mqtt.COMMANDS), "MQTT_ADMIN_PASSWORD": test_mqtt.ADMIN[1]}
    argv = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(DM_DIR / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads", str(args.threads),
            "--worker-class", "gthread", "--backlog", "2048", "device_manager:create_app()"]
    log = open(workdir / "gunicorn.log", "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(argv, env=env, cwd=DM_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"https://127.0.0.1:{port}"
    wait_for(lambda: _ready(base) or proc.poll() is not None, timeout=90, what="device-manager /readyz")
    if proc.poll() is not None:
        raise RuntimeError("gunicorn exited: " + (workdir / "gunicorn.log").read_text()[-3000:])
    return proc, base


def _ready(base: str) -> bool:
    try:
        return requests.get(base + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def login(base: str) -> str:
    """An admin access token."""
    resp = requests.post(base + "/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=30)
    resp.raise_for_status()
    return resp.json()["access_token"]


def build_targets(dsn: str, facts: dict, rng: random.Random) -> dict:
    """Paths per scenario plus what the in-process SQL floor needs (ids, pages, ranges)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id::text FROM devices ORDER BY random() LIMIT 5000")
            ids = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT count(*) FROM devices d JOIN device_types t ON t.id = d.device_type_id "
                        "WHERE d.status = %s AND t.name = %s", (LIST_FILTER["status"], LIST_FILTER["device_type"]))
            matching = cur.fetchone()[0]
            cur.execute("SELECT id::text, device_id FROM devices WHERE device_id LIKE %s ORDER BY device_id",
                        (api_seed.HOT_PREFIX + "%",))
            hot = cur.fetchall()
    finally:
        conn.close()
    pages = max(1, -(-matching // PAGE_SIZE))
    day = datetime.fromisoformat(facts["query_day"]).replace(tzinfo=UTC)
    start, end = day, day + timedelta(days=1)
    rng.shuffle(ids)
    qs = "status={status}&device_type={device_type}".format(**LIST_FILTER)
    tel = (f"start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}&every=1m&agg=mean&metric=voltage_dc")
    return {
        "matching": matching, "pages": pages, "ids": ids, "hot": hot, "start": start, "end": end,
        "paths": {
            "healthz": ["/healthz"],
            "device_get": [f"/api/v1/devices/{i}" for i in ids],
            "device_list": [f"/api/v1/devices?{qs}&page={p}&page_size={PAGE_SIZE}" for p in range(1, pages + 1)],
            "telemetry_1d_1m": [f"/api/v1/devices/{pk}/telemetry?{tel}" for pk, _ in hot],
            api_energy.SCENARIO: api_energy.paths(hot, facts["query_day"]),
        },
        "console": api_console.paths(LIST_FILTER, matching),
    }


def check_responses(base: str, token: str, targets: dict) -> dict:
    """One request per scenario before the load: status 200 and the shape we expect (else the figures lie)."""
    h = {"Authorization": f"Bearer {token}"}
    out = {}
    for name, paths in targets["paths"].items():
        resp = requests.get(base + paths[-1], headers=h, timeout=60)
        if resp.status_code != 200:
            raise RuntimeError(f"{name}: {resp.status_code} {resp.text[:300]}")
        body = resp.json()
        if name == "device_list":
            assert body["total"] == targets["matching"] and len(body["items"]) >= 1, body["total"]
            out[name] = {"total": body["total"], "items_last_page": len(body["items"]), "bytes": len(resp.content)}
        elif name == api_energy.SCENARIO:
            out[name] = {**api_energy.check(body), "bytes": len(resp.content)}
        elif name == "telemetry_1d_1m":
            points = body["series"][0]["points"]
            assert len(points) == 1440, len(points)
            out[name] = {"points": len(points), "bytes": len(resp.content)}
        else:
            out[name] = {"bytes": len(resp.content)}
    return out


def run_wrk(base: str, token: str, paths: list[str], args, workdir: Path, cookie: str = "") -> dict:
    """Closed-loop load: `connections` keep-alive connections, each sends its next request when the last returns."""
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = workdir / "random.lua"
    script.write_text(WRK_LUA)
    env = {**os.environ, "BENCH_PATHS": str(paths_file), "BENCH_TOKEN": token, "BENCH_COOKIE": cookie}
    cmd = ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s", "--timeout", "10s",
           "-s", str(script), base]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.duration + 60, check=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON "):])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    seconds = raw["duration_us"] / 1e6
    return {"requests": raw["requests"], "rps": raw["requests"] / seconds, "p50_ms": raw["p50_us"] / 1000,
            "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "mean_ms": raw["mean_us"] / 1000,
            "errors": errors, "error_detail": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")},
            "mb_per_s": raw["bytes"] / seconds / 1e6}


def in_app_times(log_path: Path, offset: int) -> dict:
    """Percentiles of the app's own per-request duration_ms (its JSON access log) since offset: time inside Flask,
    so (wrk latency - in-app) is the wait for a gunicorn thread and the GIL."""
    with log_path.open("rb") as fh:
        fh.seek(offset)
        durations = []
        for line in fh:
            if b'"duration_ms"' in line:
                try:
                    durations.append(float(json.loads(line)["duration_ms"]))
                except (ValueError, KeyError):
                    continue
    return {k: round(v, 2) for k, v in percentiles(durations, (50, 99)).items()}


def sql_floor(dsn: str, targets: dict, samples: int, rng: random.Random) -> dict:
    """The repository / series-backend call behind each endpoint, timed serially in-process (no HTTP, no JSON)."""
    from device_manager.repositories.devices import DeviceRepository
    from device_manager.service.pagination import PageRequest
    from device_manager.telemetry import build_query
    from device_manager.telemetry.postgres import PostgresSeries
    from iothub.db import Database

    db = Database(dsn, maxconn=2, application_name="bench-api-floor")
    repo, series = DeviceRepository(db), PostgresSeries(db)
    calls = {
        api_energy.SCENARIO: api_energy.floor_call(db, targets["hot"], targets["start"].date().isoformat(), rng),
        "device_get": lambda: repo.get(rng.choice(targets["ids"])),
        "device_list": lambda: repo.list(PageRequest(rng.randint(1, targets["pages"]), PAGE_SIZE, "-created_at",
                                                     dict(LIST_FILTER))),
        "telemetry_1d_1m": lambda: series.query(build_query(rng.choice(targets["hot"])[1], start=targets["start"],
                                                            end=targets["end"], metrics=("voltage_dc",),
                                                            every="1m", agg="mean")),
    }
    out = {}
    for name, call in calls.items():
        for _ in range(5):
            call()  # warm the pool and the caches
        n = samples if name != "telemetry_1d_1m" else max(20, samples // 4)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        pct = percentiles(times, (50, 99, 100))
        out[name] = {"samples": n, "p50_ms": pct["p50"], "p99_ms": pct["p99"], "max_ms": pct["max"]}
    db.close()
    return out


def explain(dsn: str, targets: dict) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL behind the list (deep page) and the telemetry query, for the record."""
    day = targets["start"]
    # The SQL DeviceRepository.list runs (count, then a deferred join for the page), at the deepest page.
    where = ("FROM devices d WHERE d.status = 'active' "
             "AND d.device_type_id = (SELECT id FROM device_types WHERE name = 'power_meter_dc')")
    order = " ORDER BY d.created_at DESC NULLS LAST, d.id DESC"
    queries = {
        "device_list_count": ("SELECT count(*) " + where, {}),
        "device_list_deep_page": (" ".join(["SELECT d.*, t.name FROM (SELECT d.id", where, order,
                                            "LIMIT 50 OFFSET %(offset)s) p JOIN devices d ON d.id = p.id",
                                            "JOIN device_types t ON t.id = d.device_type_id", order]),
                                  {"offset": (targets["pages"] - 1) * PAGE_SIZE}),
        "telemetry_1d_1m": (
            "SELECT m.type, m.unit, date_bin('1 minute', m.ts, '1970-01-01Z') AS bucket, avg(m.val) "
            "FROM telemetry t CROSS JOIN LATERAL jsonb_to_recordset(t.measurements) "
            "AS m(ts timestamptz, type text, val double precision, unit text) "
            "WHERE t.device_id = %(device)s AND t.ts >= %(lo)s AND t.ts < %(hi)s "
            "AND m.ts >= %(start)s AND m.ts < %(end)s AND m.type = ANY(%(metrics)s) "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            {"device": targets["hot"][0][1], "lo": day - timedelta(minutes=1),
             "hi": day + timedelta(days=1, minutes=15), "start": day, "end": day + timedelta(days=1),
             "metrics": ["voltage_dc"]}),
        # What the API runs for that request since migration 0160: the one-minute rollup.
        "telemetry_1d_1m_rollup": (
            "SELECT r.metric, r.unit, date_bin('1 minute', r.bucket, '1970-01-01Z') AS bucket, "
            "sum(r.sum) / sum(r.n)::double precision FROM telemetry_1m r "
            "WHERE r.device_id = %(device)s AND r.bucket >= %(start)s AND r.bucket < %(end)s "
            "AND r.metric = ANY(%(metrics)s) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            {"device": targets["hot"][0][1], "start": day, "end": day + timedelta(days=1),
             "metrics": ["voltage_dc"]}),
    }
    conn = psycopg2.connect(dsn)
    out = {}
    try:
        with conn.cursor() as cur:
            for name, (q, params) in queries.items():
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + q, params)
                out[name] = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    return out


def render_table(results: dict, floor: dict) -> list[str]:
    """Markdown rows: the API under load beside the serial in-process floor."""
    lines = ["| scenario | requests/s | p50 ms | p99 ms | max ms | errors | bar (p99) | met? "
             "| in-app p50 / p99 ms | SQL floor p50 / p99 ms | API p50 / floor p50 |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, r in results.items():
        bar = BARS_MS.get(name)
        met = "-" if bar is None else ("yes" if r["p99_ms"] < bar and r["errors"] == 0 else "**no**")
        f = floor.get(name)
        fl = f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f}" if f else "-"
        ratio = f"{r['p50_ms'] / f['p50_ms']:.1f}x" if f and f["p50_ms"] else "-"
        app = r.get("in_app") or {}
        app_txt = f"{app['p50']:.1f} / {app['p99']:.1f}" if app else "-"
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.0f} | "
                     f"{r['errors']} | {'-' if bar is None else f'< {bar}'} | {met} | {app_txt} | {fl} | {ratio} |")
    return lines


def write_doc(report: dict, command: str) -> None:
    """Replace the generated block of docs/benchmarks-api.md (text outside the markers is kept)."""
    env = report["environment"]
    seed = report["seed"]
    block = [BEGIN, f"Run {report['started_at']} (`{command}`): {seed['devices']:,} devices, "
             f"{seed['telemetry_rows']:,} telemetry rows; gunicorn {env['workers']} gthread workers x "
             f"{env['threads']} threads; wrk {env['connections']} connections, {env['duration_s']} s per scenario; "
             f"{env['cpus']} CPUs, load average {env['loadavg_before']} before the run.", "",
             *render_table(report["results"], report["sql_floor"]), "", END]
    text = DOC.read_text() if DOC.exists() else "# Device-manager API benchmark\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN not in text:
        text += "\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + "\n".join(block) + tail)


def load_scenarios(base: str, token: str, cookie: str, targets: dict, args, workdir: Path) -> dict:
    """Run wrk on each chosen scenario in turn; the console ones carry the session cookie instead of the token."""
    results = {}
    log_path = workdir / "gunicorn.log"
    for scenario in args.scenarios.split(","):
        offset = log_path.stat().st_size
        if scenario in api_console.SCENARIOS:
            r = run_wrk(base, "", targets["console"][scenario], args, workdir, cookie=cookie)
        else:
            r = run_wrk(base, token if scenario != "healthz" else "", targets["paths"][scenario], args, workdir)
        r["in_app"] = in_app_times(log_path, offset)
        results[scenario] = r
        print(f"  {scenario:16s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
              f"max {r['max_ms']:7.0f} ms  errors {r['errors']}  in-app p50 {r['in_app'].get('p50', 0):.1f} ms",
              flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Seed (or reuse), serve, load each scenario, report."""
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    command = "python -m bench.api " + " ".join(argv if argv is not None else sys.argv[1:])
    rng = random.Random(42)
    loadavg = os.getloadavg()
    dsn, name, facts, drop_after = prepare_db(args)
    print(f"energy buckets seeded: {api_energy.seed(dsn, facts['query_day']):,}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    (workdir / "mqtt").mkdir()
    mqtt = procs.mosquitto(workdir / "mqtt").start()
    api = None
    try:
        api, base = start_api(dsn, mqtt.port, args, workdir)
        token = login(base)
        targets = build_targets(dsn, facts, rng)
        shapes = check_responses(base, token, targets)
        cookie = api_console.sign_in(base, *ADMIN)
        shapes.update(api_console.check(base, cookie, targets["console"], targets["matching"]))
        print(f"list filter matches {targets['matching']:,} devices ({targets['pages']} pages); shapes {shapes}")
        results = load_scenarios(base, token, cookie, targets, args, workdir)
        floor = sql_floor(dsn, targets, args.sql_samples, rng)
        plans = explain(dsn, targets)
    finally:
        if api and api.poll() is None:
            os.killpg(api.pid, 15)
            api.wait(30)
        mqtt.stop()
        if drop_after:
            infra.drop_database(name)
    report = {"started_at": started.isoformat(timespec="seconds"), "command": command, "seed": facts,
              "environment": {"workers": args.workers, "threads": args.threads, "connections": args.connections,
                              "duration_s": args.duration, "cpus": os.cpu_count(),
                              "loadavg_before": f"{loadavg[0]:.1f}",
                              "loadavg_after": f"{os.getloadavg()[0]:.1f}"},
              "results": results, "sql_floor": floor, "responses": shapes, "explain": plans}
    print()
    print("\n".join(render_table(results, floor)))
    out = args.out or ROOT / "bench" / "out" / f"api-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nJSON: {out}")
    if not args.no_doc:
        write_doc(report, command)
        print(f"Markdown: {DOC}")
    ok = all(r["p99_ms"] < BARS_MS[n] and r["errors"] == 0 for n, r in results.items() if BARS_MS.get(n))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
