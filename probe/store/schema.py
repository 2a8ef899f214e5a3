"""The database schema, as an ordered list of migrations.

Each migration is SQL run in one transaction and recorded in ``schema_migrations``; a database
is at version N when migrations 1..N are recorded. Never edit a released migration: append a new
one. docs/schema.md documents every table, column and view.
"""

from __future__ import annotations

from probe.store.uid import sql_uuid7

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION"]

#: ``PRAGMA application_id`` of a probe database ("PRB1"), so `file` and probe recognise it.
APPLICATION_ID = 0x50524231

_V1 = """
CREATE TABLE vantage_points (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    asn INTEGER,
    as_org TEXT,
    country TEXT,
    resolver TEXT,
    network TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    vantage_id INTEGER NOT NULL REFERENCES vantage_points(id),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    software_version TEXT NOT NULL,
    lists TEXT NOT NULL DEFAULT '[]',
    options TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'complete', 'interrupted', 'offline', 'failed')),
    n_measurements INTEGER NOT NULL DEFAULT 0,
    counts TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_vantage ON runs(vantage_id, id);

CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    vantage_id INTEGER NOT NULL REFERENCES vantage_points(id),
    url TEXT NOT NULL,
    original_url TEXT NOT NULL,
    domain TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    measured_at TEXT NOT NULL,
    started REAL NOT NULL,
    runtime REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    final INTEGER NOT NULL DEFAULT 1,
    failure TEXT,
    n_hops INTEGER NOT NULL DEFAULT 0,
    final_url TEXT,
    verdict TEXT NOT NULL,
    stage TEXT,
    hop INTEGER,
    reasons TEXT NOT NULL DEFAULT '[]',
    classifier_version TEXT NOT NULL DEFAULT '',
    classified_at TEXT
);
CREATE INDEX measurements_run ON measurements(run_id);
CREATE INDEX measurements_vantage_url ON measurements(vantage_id, url, measured_at);
CREATE INDEX measurements_domain ON measurements(domain);

-- The observations JSON lives in its own table: measurement rows stay small (a few hundred
-- bytes), so verdict queries over a million rows read a few thousand pages, not gigabytes.
CREATE TABLE observations (
    measurement_id INTEGER PRIMARY KEY REFERENCES measurements(id),
    data TEXT NOT NULL
);

-- The newest final measurement per (vantage point, URL), kept up to date by triggers so that
-- "latest verdict everywhere" reads one row per URL instead of grouping every measurement.
CREATE TABLE latest (
    vantage_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    measured_at TEXT NOT NULL,
    measurement_id INTEGER NOT NULL,
    PRIMARY KEY (vantage_id, url)
) WITHOUT ROWID;

CREATE TRIGGER measurements_latest_insert AFTER INSERT ON measurements WHEN NEW.final = 1
BEGIN
    INSERT INTO latest (vantage_id, url, measured_at, measurement_id)
    VALUES (NEW.vantage_id, NEW.url, NEW.measured_at, NEW.id)
    ON CONFLICT (vantage_id, url) DO UPDATE
        SET measured_at = excluded.measured_at, measurement_id = excluded.measurement_id
        WHERE excluded.measured_at >= latest.measured_at;
END;

CREATE TRIGGER measurements_latest_delete AFTER DELETE ON measurements
BEGIN
    DELETE FROM observations WHERE measurement_id = OLD.id;
    DELETE FROM latest WHERE measurement_id = OLD.id;
    INSERT OR IGNORE INTO latest (vantage_id, url, measured_at, measurement_id)
    SELECT vantage_id, url, measured_at, id FROM measurements
    WHERE vantage_id = OLD.vantage_id AND url = OLD.url AND final = 1
    ORDER BY measured_at DESC, id DESC LIMIT 1;
END;

CREATE TABLE dns_queries (
    id INTEGER PRIMARY KEY,
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    hop INTEGER NOT NULL,
    control INTEGER NOT NULL DEFAULT 0,
    resolver TEXT NOT NULL,
    transport TEXT NOT NULL,
    qtype TEXT NOT NULL,
    hostname TEXT NOT NULL,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    failure TEXT,
    addresses TEXT NOT NULL DEFAULT '[]',
    n_replies INTEGER NOT NULL DEFAULT 0,
    n_distinct INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dns_queries_measurement ON dns_queries(measurement_id);
CREATE INDEX dns_queries_hostname ON dns_queries(hostname);
-- Partial indexes on the rare, interesting rows: cheap to maintain, fast to find.
CREATE INDEX dns_queries_injected ON dns_queries(measurement_id) WHERE n_distinct > 1;

CREATE TABLE dns_replies (
    id INTEGER PRIMARY KEY,
    query_id INTEGER NOT NULL REFERENCES dns_queries(id),
    idx INTEGER NOT NULL,
    t REAL NOT NULL,
    source TEXT NOT NULL,
    rcode TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    ttl INTEGER,
    raw BLOB
);
CREATE INDEX dns_replies_query ON dns_replies(query_id, idx);

CREATE TABLE dns_answers (
    reply_id INTEGER NOT NULL REFERENCES dns_replies(id),
    idx INTEGER NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (reply_id, idx)
) WITHOUT ROWID;
CREATE INDEX dns_answers_value ON dns_answers(value);

CREATE TABLE tcp_connects (
    id INTEGER PRIMARY KEY,
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    hop INTEGER NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    failure TEXT
);
CREATE INDEX tcp_connects_measurement ON tcp_connects(measurement_id);
CREATE INDEX tcp_connects_ip ON tcp_connects(ip);
CREATE INDEX tcp_connects_failed ON tcp_connects(ip, failure) WHERE failure IS NOT NULL;

CREATE TABLE certificates (
    sha256 TEXT PRIMARY KEY,
    der BLOB NOT NULL,
    subject TEXT,
    issuer TEXT,
    not_before TEXT,
    not_after TEXT
);

CREATE TABLE tls_handshakes (
    id INTEGER PRIMARY KEY,
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    hop INTEGER NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    sni TEXT NOT NULL,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    failure TEXT,
    version TEXT,
    cipher TEXT,
    alpn TEXT,
    cert_valid INTEGER,
    leaf_sha256 TEXT REFERENCES certificates(sha256),
    leaf_subject TEXT,
    leaf_issuer TEXT,
    leaf_not_after TEXT,
    chain TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX tls_handshakes_measurement ON tls_handshakes(measurement_id);
CREATE INDEX tls_handshakes_leaf ON tls_handshakes(leaf_sha256);
CREATE INDEX tls_handshakes_invalid ON tls_handshakes(leaf_sha256) WHERE cert_valid = 0;

CREATE TABLE http_bodies (
    sha256 TEXT PRIMARY KEY,
    length INTEGER NOT NULL,
    body BLOB NOT NULL
);

CREATE TABLE http_requests (
    id INTEGER PRIMARY KEY,
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    hop INTEGER NOT NULL,
    url TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    failure TEXT,
    status INTEGER,
    headers TEXT NOT NULL DEFAULT '[]',
    location TEXT,
    body_length INTEGER,
    body_sha256 TEXT,
    body_truncated INTEGER NOT NULL DEFAULT 0,
    title TEXT,
    body_ref TEXT REFERENCES http_bodies(sha256)
);
CREATE INDEX http_requests_measurement ON http_requests(measurement_id);
CREATE INDEX http_requests_body ON http_requests(body_sha256);

CREATE TABLE controls (
    id INTEGER PRIMARY KEY,
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    hop INTEGER NOT NULL,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    failure TEXT,
    dns_failure TEXT,
    dns_addrs TEXT NOT NULL DEFAULT '[]',
    http_failure TEXT,
    http_status INTEGER,
    http_body_length INTEGER,
    http_title TEXT,
    http_body_sha256 TEXT,
    data TEXT NOT NULL
);
CREATE INDEX controls_measurement ON controls(measurement_id, hop);

-- url comes from `latest` (not `measurements`) so that joins and filters on url use its primary
-- key: comparing two vantage points is then one lookup per URL.
CREATE VIEW latest_verdicts AS
SELECT l.vantage_id, v.name AS vantage, l.url, m.domain, m.category, m.verdict, m.stage,
       m.hop, m.reasons, m.measured_at, m.run_id, m.id AS measurement_id, m.classifier_version
FROM latest AS l
JOIN measurements AS m ON m.id = l.measurement_id
JOIN vantage_points AS v ON v.id = l.vantage_id;

CREATE VIEW blocked AS
SELECT * FROM latest_verdicts WHERE verdict NOT IN ('ok', 'inconclusive', 'down');

CREATE VIEW verdict_counts AS
SELECT m.run_id, v.name AS vantage, m.verdict, count(*) AS n
FROM measurements AS m JOIN vantage_points AS v ON v.id = m.vantage_id
WHERE m.final = 1
GROUP BY m.run_id, m.verdict;

CREATE VIEW dns_answer_sets AS
SELECT q.id AS query_id, q.measurement_id, q.hop, q.control, q.resolver, q.qtype, q.hostname,
       r.id AS reply_id, r.idx AS reply_idx, r.t, r.source, r.rcode,
       (SELECT group_concat(value, ',') FROM
           (SELECT value FROM dns_answers AS a WHERE a.reply_id = r.id AND a.type != 'CNAME'
            ORDER BY value)) AS answers
FROM dns_queries AS q JOIN dns_replies AS r ON r.query_id = q.id;
"""

_ENDPOINTS = """
CREATE TABLE endpoint_measurements (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    vantage_id INTEGER NOT NULL REFERENCES vantage_points(id),
    suite TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    transport TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    measured_at TEXT NOT NULL,
    runtime REAL NOT NULL,
    tcp_failure TEXT,
    handshake TEXT NOT NULL DEFAULT '',
    handshake_failure TEXT,
    verdict TEXT NOT NULL,
    stage TEXT,
    reasons TEXT NOT NULL DEFAULT '[]',
    classifier_version TEXT NOT NULL DEFAULT '',
    observation TEXT NOT NULL,
    control TEXT
);
CREATE INDEX endpoint_measurements_run ON endpoint_measurements(run_id);
CREATE INDEX endpoint_measurements_endpoint ON endpoint_measurements(address, port, measured_at);
"""

# Planner statistics for a large database (1,000,000 measurements, 10 vantage points, 100 runs),
# so that SQLite picks index-driven join orders from the first query on, without an ANALYZE
# (which a fresh database never had, and which costs seconds on a big one). The format is that
# of sqlite_stat1: "rows avg-rows-per-key-prefix..." (https://sqlite.org/fileformat2.html#stat1tab).
# A later ANALYZE replaces them with measured ones.
_STATS = (
    ("vantage_points", "sqlite_autoindex_vantage_points_1", "10 1"),
    ("runs", "runs_vantage", "100 10 1"),
    ("measurements", "measurements_run", "1000000 10000"),
    ("measurements", "measurements_vantage_url", "1000000 100000 10 1"),
    ("measurements", "measurements_domain", "1000000 10"),
    ("observations", None, "1000000"),
    ("latest", "latest", "100000 10000 1"),
    ("dns_queries", "dns_queries_measurement", "4000000 4"),
    ("dns_queries", "dns_queries_hostname", "4000000 40"),
    ("dns_queries", "dns_queries_injected", "1000 1"),
    ("dns_replies", "dns_replies_query", "5000000 2 1"),
    ("dns_answers", "dns_answers", "6000000 2 1"),
    ("dns_answers", "dns_answers_value", "6000000 50"),
    ("tcp_connects", "tcp_connects_measurement", "3000000 3"),
    ("tcp_connects", "tcp_connects_ip", "3000000 30"),
    ("tcp_connects", "tcp_connects_failed", "100000 10 10"),
    ("certificates", "sqlite_autoindex_certificates_1", "10000 1"),
    ("tls_handshakes", "tls_handshakes_measurement", "2000000 2"),
    ("tls_handshakes", "tls_handshakes_leaf", "2000000 200"),
    ("tls_handshakes", "tls_handshakes_invalid", "10000 100"),
    ("http_bodies", "sqlite_autoindex_http_bodies_1", "100000 1"),
    ("http_requests", "http_requests_measurement", "1500000 2"),
    ("http_requests", "http_requests_body", "1500000 100"),
    ("controls", "controls_measurement", "1500000 2 1"),
)


def _stats_sql() -> str:
    def lit(v: str | None) -> str:
        return "NULL" if v is None else "'" + v + "'"

    rows = ",\n".join(f"({lit(t)}, {lit(i)}, {lit(s)})" for t, i, s in _STATS)
    return (
        "ANALYZE sqlite_schema;\n"  # creates sqlite_stat1 if needed
        "DELETE FROM sqlite_stat1;\n"
        f"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES\n{rows};\n"
    )


def _ms(iso_column: str) -> str:
    """Unix milliseconds of an ISO 8601 text column."""
    return f"CAST(round((julianday({iso_column}) - 2440587.5) * 86400000) AS INTEGER)"


# uid columns (UUIDv7 text) next to the integer keys of the three entities that travel between
# databases. Rows of an older database get a uid from their own time: backfilled once, here.
_V3_UIDS = f"""
ALTER TABLE vantage_points ADD COLUMN uid TEXT;
ALTER TABLE runs ADD COLUMN uid TEXT;
ALTER TABLE measurements ADD COLUMN uid TEXT;
UPDATE vantage_points SET uid = {sql_uuid7(_ms("created_at"))} WHERE uid IS NULL;
UPDATE runs SET uid = {sql_uuid7(_ms("started_at"))} WHERE uid IS NULL;
UPDATE measurements SET uid = {sql_uuid7("CAST(round(started * 1000) AS INTEGER)")} WHERE uid IS NULL;
CREATE UNIQUE INDEX vantage_points_uid ON vantage_points(uid);
CREATE UNIQUE INDEX runs_uid ON runs(uid);
CREATE UNIQUE INDEX measurements_uid ON measurements(uid);
INSERT INTO sqlite_stat1 (tbl, idx, stat) SELECT 'measurements', 'measurements_uid', '1000000 1'
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE idx = 'measurements_uid');
INSERT INTO sqlite_stat1 (tbl, idx, stat) SELECT 'runs', 'runs_uid', '100 1'
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 WHERE idx = 'runs_uid');
"""

# The verdict, stage and category of each latest measurement, copied into `latest` by its
# triggers (and kept in step when a verdict is re-judged), so that the URL x vantage point matrix
# is one scan of `latest` (small rows, in primary-key order) instead of one random lookup into
# `measurements` per cell: 1M measurements / 20 vantage points went from seconds to a fraction.
_V5_LATEST_VERDICTS = """
ALTER TABLE latest ADD COLUMN verdict TEXT;
ALTER TABLE latest ADD COLUMN stage TEXT;
ALTER TABLE latest ADD COLUMN category TEXT;
UPDATE latest SET (verdict, stage, category) =
    (SELECT m.verdict, m.stage, m.category FROM measurements AS m WHERE m.id = latest.measurement_id);
DROP TRIGGER measurements_latest_insert;
DROP TRIGGER measurements_latest_delete;
CREATE TRIGGER measurements_latest_insert AFTER INSERT ON measurements WHEN NEW.final = 1
BEGIN
    INSERT INTO latest (vantage_id, url, measured_at, measurement_id, verdict, stage, category)
    VALUES (NEW.vantage_id, NEW.url, NEW.measured_at, NEW.id, NEW.verdict, NEW.stage, NEW.category)
    ON CONFLICT (vantage_id, url) DO UPDATE
        SET measured_at = excluded.measured_at, measurement_id = excluded.measurement_id,
            verdict = excluded.verdict, stage = excluded.stage, category = excluded.category
        WHERE excluded.measured_at >= latest.measured_at;
END;
CREATE TRIGGER measurements_latest_delete AFTER DELETE ON measurements
BEGIN
    DELETE FROM observations WHERE measurement_id = OLD.id;
    DELETE FROM latest WHERE measurement_id = OLD.id;
    INSERT OR IGNORE INTO latest (vantage_id, url, measured_at, measurement_id, verdict, stage,
                                  category)
    SELECT vantage_id, url, measured_at, id, verdict, stage, category FROM measurements
    WHERE vantage_id = OLD.vantage_id AND url = OLD.url AND final = 1
    ORDER BY measured_at DESC, id DESC LIMIT 1;
END;
CREATE TRIGGER measurements_latest_verdict AFTER UPDATE OF verdict, stage, category ON measurements
BEGIN
    UPDATE latest SET verdict = NEW.verdict, stage = NEW.stage, category = NEW.category
    WHERE measurement_id = NEW.id;
END;
"""

# OONI measurements imported by `probe import ooni` (probe/research/ooni/importer.py): OONI's identifiers and
# verdict next to probe's, and the measurements where the two differ.
_OONI = """
CREATE TABLE ooni_measurements (
    measurement_id INTEGER PRIMARY KEY REFERENCES measurements(id),
    report_id TEXT NOT NULL,
    measurement_uid TEXT NOT NULL,
    input TEXT NOT NULL,
    measurement_start_time TEXT NOT NULL,
    probe_asn TEXT,
    probe_cc TEXT,
    resolver_asn TEXT,
    software TEXT,
    engine TEXT,
    test_version TEXT,
    blocking TEXT,
    accessible INTEGER,
    ooni_verdict TEXT NOT NULL,
    inferred TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL
);
CREATE UNIQUE INDEX ooni_measurements_key
    ON ooni_measurements(report_id, input, measurement_start_time, measurement_uid);

CREATE VIEW ooni_disagreements AS
SELECT o.measurement_id, o.report_id, o.measurement_uid, o.input, o.measurement_start_time,
       o.probe_cc, o.probe_asn, o.blocking AS ooni_blocking, o.accessible AS ooni_accessible,
       o.ooni_verdict, m.verdict AS probe_verdict, m.stage AS probe_stage, m.hop AS probe_hop,
       m.reasons AS probe_reasons, o.inferred, o.source
FROM ooni_measurements AS o JOIN measurements AS m ON m.id = o.measurement_id
WHERE m.verdict != o.ooni_verdict
  AND NOT (m.verdict IN ('blocked', 'reset', 'hijacked')
           AND o.ooni_verdict IN ('blocked', 'reset', 'hijacked'));
"""

_V7_IDENTITY = """
ALTER TABLE runs ADD COLUMN asn INTEGER;
ALTER TABLE runs ADD COLUMN as_org TEXT;
ALTER TABLE runs ADD COLUMN country TEXT;
ALTER TABLE runs ADD COLUMN resolver_ip TEXT;
ALTER TABLE runs ADD COLUMN resolver_asn INTEGER;
ALTER TABLE runs ADD COLUMN resolver_as_org TEXT;
ALTER TABLE runs ADD COLUMN network_changed INTEGER;
ALTER TABLE runs ADD COLUMN identity TEXT NOT NULL DEFAULT '{}';
"""

_V8 = """
CREATE TABLE packets (
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    idx INTEGER NOT NULL,
    t REAL NOT NULL,
    proto TEXT NOT NULL,
    src TEXT NOT NULL,
    sport INTEGER NOT NULL,
    dport INTEGER NOT NULL,
    ttl INTEGER NOT NULL,
    ip_id INTEGER NOT NULL,
    df INTEGER NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    window INTEGER,
    seq INTEGER,
    ack INTEGER,
    seq_rel INTEGER,
    ack_rel INTEGER,
    payload INTEGER NOT NULL DEFAULT 0,
    digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (measurement_id, idx)
) WITHOUT ROWID;

CREATE TRIGGER measurements_packets_delete AFTER DELETE ON measurements
BEGIN
    DELETE FROM packets WHERE measurement_id = OLD.id;
END;

CREATE TABLE traces (
    id INTEGER PRIMARY KEY,
    vantage_id INTEGER NOT NULL REFERENCES vantage_points(id),
    started_at TEXT NOT NULL,
    url TEXT NOT NULL,
    trigger TEXT NOT NULL,
    control_name TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    censor_hop INTEGER,
    placement TEXT,
    packets_sent INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE trace_hops (
    trace_id INTEGER NOT NULL REFERENCES traces(id),
    ttl INTEGER NOT NULL,
    probe TEXT NOT NULL CHECK (probe IN ('trigger', 'control')),
    router TEXT,
    outcome TEXT NOT NULL,
    rtt REAL,
    PRIMARY KEY (trace_id, ttl, probe)
) WITHOUT ROWID;
"""

# A global id for each endpoint measurement (probe circumvention), as measurements have since
# version 3: `probe merge` copies the endpoint rows it has not seen, also those added to a run
# that was already merged (before, they came only with a run new to the output). Rows of an older
# database get a uid from their own time; a row merged before it had a uid is recognised by
# what it measured (probe/store/merge.py).
_V9_ENDPOINT_UIDS = f"""
ALTER TABLE endpoint_measurements ADD COLUMN uid TEXT;
UPDATE endpoint_measurements SET uid = {sql_uuid7(_ms("measured_at"))} WHERE uid IS NULL;
CREATE UNIQUE INDEX endpoint_measurements_uid ON endpoint_measurements(uid);
"""

# The verdicts of the opt-in protocol tests of a URL (probe run --quic / --ech), one row per
# measurement and test, beside the URL's web verdict in measurements (docs/protocols.md). The
# observations themselves are in the measurement's observations JSON (hops[].quic, .ech).
_V10_PROTOCOLS = """
CREATE TABLE protocol_verdicts (
    measurement_id INTEGER NOT NULL REFERENCES measurements(id),
    suite TEXT NOT NULL,
    verdict TEXT NOT NULL,
    stage TEXT,
    hop INTEGER,
    reasons TEXT NOT NULL DEFAULT '[]',
    classifier_version TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (measurement_id, suite)
) WITHOUT ROWID;
CREATE INDEX protocol_verdicts_suite ON protocol_verdicts(suite, verdict);
CREATE TRIGGER measurements_protocol_verdicts_delete AFTER DELETE ON measurements
BEGIN
    DELETE FROM protocol_verdicts WHERE measurement_id = OLD.id;
END;
"""

# The store at a third of its size (issue 25): observations packed with their controls
# (probe/store/observations.py: zlib against a dictionary made from probe's record types), and
# the flat tables keep what SQL asks about (who, what, outcome), not copies of what the
# observations hold. Dropped: controls.data, .url and .source (the control is in its hop of the
# observations, with the helper it came from, and measured the hop's URL), dns_replies.raw
# (the wire bytes are in the observations), the timings of queries, connects, handshakes and
# requests (the observations' started and duration: no query of probe's or of docs/ reads them
# from SQL), dns_queries.transport
# (the resolver's scheme says it) and .addresses (dns_answers holds every reply's), the leaf
# certificate's subject, issuer and expiry (in `certificates`: the `tls_certificates` view joins
# them back under their old names), the chain, cipher and ALPN of handshakes, and
# http_requests.headers (in the observations), the control's body hash (its length and title
# stay); indexes that no query of probe's or of docs/ uses: lookups of one certificate or body
# hash (tls_handshakes_leaf, _invalid, http_requests_body: the documented questions group every
# handshake or every blocked page, which reads the table anyway; a lookup of one hash now scans
# the table), dns_queries_hostname, and tcp_connects_ip (the failed connects, the ones asked
# about, keep tcp_connects_failed). controls.http_transfer says
# which controls timed their fetch (the throttling rule asks; it used to search controls.data).
# `probe_pack_legacy` is probe/store/observations.py's pack_legacy, registered on the connection.
# (Written as migration 10 on its branch; numbered 11 after main's protocol verdicts, which it
# leaves alone: the QUIC and ECH observations are packed in their hops like the rest.)
_V11_COMPACT = """
ALTER TABLE controls ADD COLUMN http_transfer REAL;
UPDATE controls SET http_transfer = json_extract(data, '$.http_transfer');
UPDATE observations SET data = probe_pack_legacy(data, (
    SELECT json_group_array(json_array(c.hop, json(c.data))) FROM controls AS c
    WHERE c.measurement_id = observations.measurement_id));
ALTER TABLE controls DROP COLUMN data;
ALTER TABLE controls DROP COLUMN url;
ALTER TABLE controls DROP COLUMN source;
ALTER TABLE controls DROP COLUMN http_body_sha256;
ALTER TABLE dns_replies DROP COLUMN raw;
DROP INDEX dns_queries_hostname;
ALTER TABLE dns_queries DROP COLUMN transport;
ALTER TABLE dns_queries DROP COLUMN started;
ALTER TABLE dns_queries DROP COLUMN duration;
ALTER TABLE dns_queries DROP COLUMN addresses;
DROP INDEX tcp_connects_ip;
ALTER TABLE tcp_connects DROP COLUMN started;
ALTER TABLE tcp_connects DROP COLUMN duration;
DROP INDEX tls_handshakes_leaf;
DROP INDEX tls_handshakes_invalid;
ALTER TABLE tls_handshakes DROP COLUMN started;
ALTER TABLE tls_handshakes DROP COLUMN duration;
ALTER TABLE tls_handshakes DROP COLUMN cipher;
ALTER TABLE tls_handshakes DROP COLUMN alpn;
ALTER TABLE tls_handshakes DROP COLUMN leaf_subject;
ALTER TABLE tls_handshakes DROP COLUMN leaf_issuer;
ALTER TABLE tls_handshakes DROP COLUMN leaf_not_after;
ALTER TABLE tls_handshakes DROP COLUMN chain;
DROP INDEX http_requests_body;
ALTER TABLE http_requests DROP COLUMN started;
ALTER TABLE http_requests DROP COLUMN duration;
ALTER TABLE http_requests DROP COLUMN headers;
DELETE FROM sqlite_stat1 WHERE idx IN ('tls_handshakes_leaf', 'tls_handshakes_invalid',
    'tcp_connects_ip', 'dns_queries_hostname', 'http_requests_body');

-- The leaf certificate of each handshake, under the column names tls_handshakes had before.
CREATE VIEW tls_certificates AS
SELECT t.id, t.measurement_id, t.hop, t.ip, t.port, t.sni, t.failure, t.cert_valid,
       t.leaf_sha256, c.subject AS leaf_subject, c.issuer AS leaf_issuer,
       c.not_before AS leaf_not_before, c.not_after AS leaf_not_after
FROM tls_handshakes AS t JOIN certificates AS c ON c.sha256 = t.leaf_sha256;
"""

# The database's own global id (a UUIDv7 drawn when it was made or upgraded), and those of the
# databases merged into it ('merged:<uid>' keys, probe/store/merge.py; a merge copies its
# source's own 'merged:' rows too, so a merge of merges knows every source): what exports cite as
# their provenance and put in their file names, so exports of many databases never collide.
# (Since migration 13 the merged databases are rows of merged_sources instead.)
_V12_DATABASE_UID = f"""
CREATE TABLE probe_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO probe_meta (key, value)
VALUES ('uid', {sql_uuid7("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")});
"""

# The databases merged into this one, by their global ids (probe_meta's 'uid' in each): one row
# per database, whether `probe merge` read it as a source (with the fingerprint of what it held
# then, probe/store/sources.py, so that merging it again unchanged skips it unread; its file's
# name only, never its directory: no user's path is stored) or it came inside a merged database
# (that one's own rows: a merge of merges knows every database, fingerprint NULL). Migration 12
# kept these as probe_meta's 'merged:<uid>' rows: moved here, so that one table says which
# databases were merged, and probe_meta holds this database's own id.
_V13_MERGED_SOURCES = """
CREATE TABLE merged_sources (
    uid TEXT PRIMARY KEY,
    merged_at TEXT NOT NULL,
    fingerprint TEXT,
    name TEXT,
    measurements INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX merged_sources_fingerprint ON merged_sources(fingerprint);
INSERT INTO merged_sources (uid, merged_at)
SELECT substr(key, length('merged:') + 1), value FROM probe_meta WHERE key LIKE 'merged:%';
DELETE FROM probe_meta WHERE key LIKE 'merged:%';
"""

# OONI's other experiments (tor, openvpn, telegram, whatsapp, signal, dnscheck, ...) imported by
# `probe import ooni` (probe/research/ooni/experiments.py): each endpoint is an
# endpoint_measurements row (beside probe's own circumvention and messaging results), and this
# row keeps OONI's identifiers and OONI's own verdict beside probe's. It names its endpoint row
# by uid (the same in every database that imports the same OONI endpoint), so `probe merge`
# copies it as it copies the endpoint rows.
_OONI_ENDPOINTS = """
CREATE TABLE ooni_endpoints (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    test_name TEXT NOT NULL,
    report_id TEXT NOT NULL,
    measurement_uid TEXT NOT NULL,
    input TEXT NOT NULL DEFAULT '',
    measurement_start_time TEXT NOT NULL,
    target TEXT NOT NULL,
    probe_asn TEXT,
    probe_cc TEXT,
    resolver_asn TEXT,
    software TEXT,
    engine TEXT,
    test_version TEXT,
    ooni_status TEXT NOT NULL DEFAULT '',
    ooni_verdict TEXT NOT NULL,
    ooni_keys TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL
);
CREATE UNIQUE INDEX ooni_endpoints_uid ON ooni_endpoints(uid);

CREATE VIEW ooni_endpoint_disagreements AS
SELECT e.id AS endpoint_id, o.test_name, o.target, e.kind, e.name, e.address, e.port,
       o.report_id, o.measurement_uid, o.input, o.measurement_start_time, o.probe_cc, o.probe_asn,
       o.ooni_status, o.ooni_verdict, e.verdict AS probe_verdict, e.stage AS probe_stage,
       e.reasons AS probe_reasons, o.source
FROM ooni_endpoints AS o JOIN endpoint_measurements AS e ON e.uid = o.uid
WHERE e.verdict != o.ooni_verdict
  AND NOT (e.verdict IN ('blocked', 'reset', 'hijacked', 'throttled')
           AND o.ooni_verdict IN ('blocked', 'anomaly'));
"""

#: (version, name, SQL); applied in order, each in its own transaction.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "initial schema", _V1 + _stats_sql()),
    # The process that runs a run (probe/store/owner.py), so that a later probe can close runs
    # whose process was killed.
    (2, "run owners", "ALTER TABLE runs ADD COLUMN owner TEXT;\n"),
    # Global ids (probe/store/uid.py): merge (probe/store/merge.py) and exports name rows by them.
    (3, "global ids", _V3_UIDS),
    # Circumvention tools' endpoints (Tor, OpenVPN, VPN TLS/TCP) measured by `probe circumvention`.
    (4, "endpoint measurements", _ENDPOINTS),
    # `probe compare` reads the latest verdict of every URL everywhere from `latest` alone.
    (5, "latest verdicts in latest", _V5_LATEST_VERDICTS),
    # OONI measurements imported by `probe import ooni`, OONI's verdict beside probe's.
    (6, "OONI imports", _OONI),
    # The network identity of each run (probe/measure/identity.py): what the public address maps to
    # (never the address), the resolver seen from outside, and whether the network changed.
    (7, "run network identity", _V7_IDENTITY),
    # Packet metadata of what came back on the probe's flows (probe run --capture), and the
    # results of probe trace. docs/packets.md says what each column is evidence of.
    (8, "packets and traces", _V8),
    # Global ids of endpoint measurements, so that merge is idempotent on them.
    (9, "endpoint measurement ids", _V9_ENDPOINT_UIDS),
    # Verdicts of the opt-in QUIC and ECH tests (probe run --quic, --ech).
    (10, "protocol verdicts", _V10_PROTOCOLS),
    # Observations packed with their controls; flat tables without copies (docs/schema.md).
    (11, "compact observations", _V11_COMPACT),
    # The database's global id, and those of the databases merged into it.
    (12, "database ids", _V12_DATABASE_UID),
    # The databases merged into this one (probe merge skips a source merged unchanged).
    (13, "merged sources", _V13_MERGED_SOURCES),
    # OONI's other experiments imported by `probe import ooni`, OONI's verdict beside probe's.
    (14, "OONI endpoint imports", _OONI_ENDPOINTS),
)

#: The schema version this probe writes.
SCHEMA_VERSION = MIGRATIONS[-1][0]
