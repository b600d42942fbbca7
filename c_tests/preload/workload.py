"""A Python workload for the preloaded malloc: JSON and sqlite3.

Builds nested records, round-trips them through json, stores them in an
in-memory sqlite3 database, queries aggregates, and prints a digest of
everything. The output is deterministic, so run_tests.sh compares a run on
liballoc_preload.so with one on plain glibc. `python3 workload.py N` scales
the work (the benchmark uses a larger N).
"""
import hashlib
import json
import sqlite3
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
records = [
    {"id": i, "name": "user%05d" % i, "tags": ["t%d" % (i % k) for k in range(1, 6)],
     "score": (i * 7919) % 1000 / 10.0, "nested": {"a": [i, i * 2, {"b": str(i)}]}}
    for i in range(n)
]
text = json.dumps(records, sort_keys=True)
back = json.loads(text)
assert back == records
db = sqlite3.connect(":memory:")
db.execute("create table r (id integer primary key, name text, score real, doc text)")
db.executemany("insert into r values (?, ?, ?, ?)",
               ((r["id"], r["name"], r["score"], json.dumps(r)) for r in records))
db.execute("create index r_score on r(score)")
rows = db.execute("select count(*), sum(score), min(name), max(name) from r where score > 50").fetchall()
top = db.execute("select name from r order by score desc, id limit 5").fetchall()
grouped = db.execute("select cast(score / 10 as int) g, count(*) from r group by g order by g").fetchall()
digest = hashlib.sha256(text.encode()).hexdigest()
print(json.dumps({"rows": rows, "top": top, "grouped": grouped, "digest": digest}))
