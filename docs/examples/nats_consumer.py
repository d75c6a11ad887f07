#!/usr/bin/env python3
"""A consumer of the shop's integration events in Python, with nats-py: what another team would
write in another language. It does what the Rust `notifications` service does, in little space:

- a durable pull consumer (JetStream keeps its place under the name given with --durable), with
  explicit acks, filtered on the order events;
- an inbox (here a SQLite file): the event id and the work it causes are recorded in one
  transaction, and an id already there is dropped, so a redelivery does no harm, however late;
- an ack only after that transaction committed.

    python3 -m venv .venv && .venv/bin/pip install --require-hashes -r requirements.txt
    NATS_URL=nats://127.0.0.1:4222 NATS_STREAM=SHOP_EVENTS NATS_SUBJECT_PREFIX=shop \\
        .venv/bin/python nats_consumer.py --durable shipping --inbox shipping.sqlite

For each order event it handles it prints one line:
    <id> <type> order=<order id> customer=<customer id> total_cents=<total>
and, for a copy it drops, `<id> duplicate dropped`. With --until-idle it stops when no message
has come for a second (for scripts); otherwise it runs until Ctrl-C.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import sys

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


def open_inbox(path):
    inbox = sqlite3.connect(path)
    inbox.execute("CREATE TABLE IF NOT EXISTS inbox (event_id TEXT PRIMARY KEY)")
    inbox.execute(
        "CREATE TABLE IF NOT EXISTS orders_seen (event_id TEXT PRIMARY KEY, type TEXT, order_id TEXT)"
    )
    return inbox


def handle(inbox, envelope):
    """Records the event and its effect in one transaction; False if it was handled before."""
    with inbox:  # one SQLite transaction: commits on success, rolls back on an exception
        first = inbox.execute(
            "INSERT OR IGNORE INTO inbox (event_id) VALUES (?)", (envelope["id"],)
        ).rowcount == 1
        if first:
            data = envelope["data"]
            inbox.execute(
                "INSERT INTO orders_seen (event_id, type, order_id) VALUES (?, ?, ?)",
                (envelope["id"], envelope["type"], data["order_id"]),
            )
    return first


async def consume(args):
    nc = await nats.connect(args.url, name=f"python example ({args.durable})")
    js = nc.jetstream()
    subject = f"{args.prefix}.events.order.>"
    sub = await js.pull_subscribe(
        subject,
        durable=args.durable,
        stream=args.stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
        ),
    )
    inbox = open_inbox(args.inbox)
    try:
        while True:
            try:
                messages = await sub.fetch(batch=50, timeout=1)
            except asyncio.TimeoutError:  # nats-py raises its own subclass, or this one
                if args.until_idle:
                    break
                continue
            for msg in messages:
                envelope = json.loads(msg.data)
                if envelope.get("version") != 1:
                    await msg.ack()  # a version this consumer does not know: skip it
                    continue
                if handle(inbox, envelope):
                    data = envelope["data"]
                    print(
                        f"{envelope['id']} {envelope['type']} order={data['order_id']} "
                        f"customer={data['customer_id']} total_cents={data['total_cents']}",
                        flush=True,
                    )
                else:
                    print(f"{envelope['id']} duplicate dropped", flush=True)
                await msg.ack()
    finally:
        # Acks leave in the background: send them before closing.
        await nc.flush()
        await nc.close()
        inbox.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--stream", default=os.environ.get("NATS_STREAM", "SHOP_EVENTS"))
    parser.add_argument("--prefix", default=os.environ.get("NATS_SUBJECT_PREFIX", "shop"))
    parser.add_argument("--durable", default="python-example")
    parser.add_argument("--inbox", default="inbox.sqlite")
    parser.add_argument("--until-idle", action="store_true")
    args = parser.parse_args()
    try:
        asyncio.run(consume(args))
    except KeyboardInterrupt:
        pass
    except Exception as error:  # one clear line, not a traceback
        print(f"nats_consumer.py: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
