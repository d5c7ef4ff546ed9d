#!/usr/bin/env python3
"""Copies every Contact of a Salesforce org into PostgreSQL, the way a careful user would script it.

This is the benchmark's "best script a user would write" baseline: simple-salesforce's
`query_all_iter` reads the object page after page through the REST query API, psycopg 3 COPYs
the rows into a staging table in transactions of 2,000 rows, and one
`INSERT ... ON CONFLICT (id) DO UPDATE` moves them from the staging table into the final one.
It selects the same fields sfsync imports: every field of the describe except the compound ones
(address, location), whose components are fields of their own, and blobs (base64).

The token comes from the org's OAuth endpoint with the client-credentials grant, as the
producer gets it (SF_LOGIN_URL, SF_CLIENT_ID, SF_CLIENT_SECRET).

On success it prints one JSON line on stdout:
  {"rows": N, "seconds": S, "api_calls": C, "fields": F, "object": "Contact", "staged": R}
`rows` is what the final table holds afterwards, `seconds` the time from before the token
request until the last commit, `api_calls` the calls to the REST API (`/services/data/...`:
describe, query, queryMore; the token request is not one, as Salesforce does not count it),
`fields` the fields selected, `staged` the rows read and COPYed into the staging table.

Usage: sf_to_pg.py --dsn postgresql://postgres@127.0.0.1/db [--schema script] [--object Contact]
"""

import argparse
import json
import os
import sys
import time

import psycopg
import requests
from psycopg import sql
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

# Rows per staging transaction.
BATCH_ROWS = 2000

# Salesforce field types and the PostgreSQL column types they go into (the same mapping sfsync
# uses, so that both end up with the same typed columns).
PG_TYPES = {
    "id": "varchar(18)",
    "reference": "varchar(18)",
    "boolean": "boolean",
    "int": "integer",
    "long": "bigint",
    "double": "numeric",
    "currency": "numeric",
    "percent": "numeric",
    "date": "date",
    "datetime": "timestamptz",
    "time": "time",
}
# Not selected: compound values repeat their component fields; base64 is a URL per record.
SKIPPED_TYPES = {"address", "location", "base64"}


class PlainHttpInstance(HTTPAdapter):
    """simple-salesforce always builds `https://<instance>` URLs; a local fake org speaks plain
    HTTP. Mounted for the instance only, this sends those requests over http instead. Against a
    real org (https) it is not mounted."""

    def send(self, request, **kwargs):
        request.url = "http://" + request.url[len("https://") :]
        return super().send(request, **kwargs)


def get_token(login_url, client_id, client_secret):
    """OAuth 2.0 client-credentials grant; returns (access_token, instance_url)."""
    response = requests.post(
        login_url.rstrip("/") + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    return body["access_token"], body["instance_url"]


def connect_salesforce(token, instance_url):
    """A simple-salesforce client on the token, and a counter of its REST calls."""
    session = requests.Session()
    if instance_url.startswith("http://"):
        host = instance_url[len("http://") :].rstrip("/")
        session.mount(f"https://{host}/", PlainHttpInstance())
    calls = {"n": 0}

    def count(response, *args, **kwargs):
        if "/services/data/" in response.url:
            calls["n"] += 1

    session.hooks["response"].append(count)
    sf = Salesforce(instance_url=instance_url, session_id=token, session=session)
    return sf, calls


def column(name):
    # Salesforce's Id becomes the primary key `id`; every other field its lower-cased name.
    return name.lower()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"), help="PostgreSQL URL")
    parser.add_argument("--schema", default="script", help="schema of the final and staging tables")
    parser.add_argument("--object", default="Contact", help="the Salesforce object to copy")
    parser.add_argument("--login-url", default=os.environ.get("SF_LOGIN_URL"))
    parser.add_argument("--client-id", default=os.environ.get("SF_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("SF_CLIENT_SECRET"))
    args = parser.parse_args()
    for flag in ("dsn", "login_url", "client_id", "client_secret"):
        if not getattr(args, flag):
            parser.error(f"--{flag.replace('_', '-')} (or its environment variable) is required")

    started = time.monotonic()
    token, instance_url = get_token(args.login_url, args.client_id, args.client_secret)
    sf, calls = connect_salesforce(token, instance_url)

    describe = getattr(sf, args.object).describe()
    fields = [f for f in describe["fields"] if f["type"] not in SKIPPED_TYPES]
    names = [f["name"] for f in fields]
    columns = [column(n) for n in names]

    final = sql.Identifier(args.schema, args.object.lower())
    staging = sql.Identifier(args.schema, args.object.lower() + "_staging")
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(column(f["name"])),
            sql.SQL(PG_TYPES.get(f["type"], "text")),
            sql.SQL(" PRIMARY KEY" if f["name"] == "Id" else ""),
        )
        for f in fields
    )

    with psycopg.connect(args.dsn) as conn:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(args.schema)))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(final, definitions))
            # Unlogged: the staging rows are thrown away after the run, no WAL needed for them.
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
            conn.execute(
                sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(staging, final)
            )

        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, column_list)
        soql = f"SELECT {', '.join(names)} FROM {args.object}"
        batch = []
        staged = 0

        def flush():
            nonlocal staged
            with conn.transaction():
                with conn.cursor() as cur:
                    with cur.copy(copy_sql) as copy:
                        for row in batch:
                            copy.write_row(row)
            staged += len(batch)
            batch.clear()

        for record in sf.query_all_iter(soql):
            batch.append([record[n] for n in names])
            if len(batch) >= BATCH_ROWS:
                flush()
        if batch:
            flush()

        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c != "id"
        )
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {final} ({cols}) SELECT {cols} FROM {staging} "
                    "ON CONFLICT (id) DO UPDATE SET {updates}"
                ).format(final=final, cols=column_list, staging=staging, updates=updates)
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(staging))
        seconds = time.monotonic() - started
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(final)).fetchone()[0]

    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 3),
                "api_calls": calls["n"],
                "fields": len(names),
                "object": args.object,
                "staged": staged,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
