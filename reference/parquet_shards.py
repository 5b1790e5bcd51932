"""Writes Parquet shards the way Hugging Face datasets tools do (pyarrow), for saelab-data's
reader tests: dictionary-encoded, nullable text column, several row groups, one shard per
codec the build handles differently.

    python3 reference/parquet_shards.py   # needs pyarrow
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parent.parent / "crates/data/tests/fixtures"


def table():
    texts = [f"pyarrow document {i}" if i % 5 != 2 else None for i in range(40)]
    texts[7] = "naïve café, 東京"  # non-ASCII text survives the round trip
    texts[8] = texts[9]  # a repeated value: the dictionary page is shared
    return pa.table({
        "id": pa.array(range(40), pa.int64()),
        "text": pa.array(texts, pa.large_string()),
        "lang": pa.array(["en"] * 40),
    })


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for codec in ("snappy", "zstd"):
        pq.write_table(table(), OUT / f"pyarrow_{codec}.parquet", compression=codec,
                       row_group_size=16, use_dictionary=True)


if __name__ == "__main__":
    main()
