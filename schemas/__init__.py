"""The Avro contract: one .avsc per event type (namespace murmur.v1).

``history/`` keeps every released version of each schema; CI checks that the
current file stays FULL_TRANSITIVE compatible with all of them.
"""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
