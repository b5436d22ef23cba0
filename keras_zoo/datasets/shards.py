"""Tfrecord shard sets ``<split>-<i:05d>-of-<n:05d>[suffix]``: writing them safely and checking them on read.

``keras-zoo prepare voc`` (suffix ``.tfrecord``) and ``prepare imagenet`` (no suffix) write through
:func:`shard_output`: the shards of a run are written to hidden temporary files and renamed into place only
when every shard is complete, so a failed run leaves nothing of its own behind (not even the output folder,
when it made it) and a folder that already holds shards of a split is refused unless ``overwrite``. With
``overwrite`` only the shards of the splits written are replaced, and the old shards of those splits that the
new set does not replace are removed, so no stale shard is read with the new ones.

The readers call :func:`check_shard_set`: a split whose shards disagree on the shard count
(``-of-00002`` beside ``-of-00004``) or miss one is a one-line DataError naming the folder.
:func:`record_count` counts a shard's records from their length fields alone, so a reader can tell Keras
where a split ends without reading it.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence

from keras_zoo.errors import ConfigError, data_error
from keras_zoo.run_folder import made_folder


def _pattern(split: str, suffix: str) -> re.Pattern:
    return re.compile(re.escape(split) + r"-(\d{5})-of-(\d{5})" + re.escape(suffix))


def split_shards(folder: str, split: str, suffix: str) -> list[str]:
    """Paths of the files in ``folder`` named as shards of ``split`` (any shard count), sorted."""
    if not os.path.isdir(folder):
        return []
    pattern = _pattern(split, suffix)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if pattern.fullmatch(name))


def check_shard_set(folder: str | os.PathLike, split: str, files: Sequence[str], suffix: str) -> None:
    """Raises DataError when the shards of ``split`` among ``files`` do not form one complete set.

    Files not named ``<split>-NNNNN-of-NNNNN<suffix>`` are not checked.
    """
    pattern = _pattern(split, suffix)
    found = [m for m in (pattern.fullmatch(os.path.basename(f)) for f in files) if m]
    counts = sorted({int(m.group(2)) for m in found})
    if len(counts) > 1:
        listed = " and ".join(f"-of-{c:05d}" for c in counts)
        raise data_error(
            folder,
            f"{split} shards disagree on the shard count ({listed}): stale shards of an earlier prepare; "
            "remove them or prepare again with --overwrite",
        )
    if counts:
        have = {int(m.group(1)) for m in found}
        missing = sorted(set(range(counts[0])) - have)
        if missing or max(have) >= counts[0]:
            first = missing[0] if missing else max(have)
            raise data_error(
                folder,
                f"{split} shard set is incomplete or inconsistent: {split}-{first:05d}-of-{counts[0]:05d}{suffix} "
                f"{'is missing' if missing else 'is out of range'} ({len(have)} of {counts[0]} shards found)",
            )


@contextlib.contextmanager
def shard_output(
    output_dir: str | os.PathLike, splits: Sequence[str], suffix: str, overwrite: bool = False
) -> Iterator[Callable[[str], str]]:
    """``with shard_output(out, splits, suffix, overwrite) as stage:`` ``tmp = stage(final_path)`` per shard.

    Checks ``output_dir`` (not a file; no shards of ``splits`` there unless ``overwrite``) and creates it when
    missing. Each ``stage(path)`` returns a hidden temporary file beside ``path`` to write the shard into. When
    the block succeeds every temporary file is renamed to its shard name and, with ``overwrite``, the other
    shards of ``splits`` are removed; when it fails the temporary files are removed (and the folder, if it was
    created here and is left empty). Nothing else in ``output_dir`` is touched.

    Raises:
        ConfigError: ``output_dir`` is a file or cannot be created, or holds shards of a split and not
            ``overwrite``.
    """
    output_dir = os.fspath(output_dir)
    with made_folder(output_dir):
        existing = {split: split_shards(output_dir, split, suffix) for split in dict.fromkeys(splits)}
        if not overwrite:
            for split, files in existing.items():
                if files:
                    raise ConfigError(
                        f"{files[0]}: {output_dir} already holds {split} shards; pass --overwrite to replace "
                        f"the {split} shards, or choose another --output"
                    )
        staged: dict[str, str] = {}

        def stage(path: str) -> str:
            fd, tmp = tempfile.mkstemp(
                prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=output_dir
            )
            os.close(fd)
            staged[os.path.join(output_dir, os.path.basename(path))] = tmp
            return tmp

        try:
            yield stage
        except BaseException:
            for tmp in staged.values():
                with contextlib.suppress(OSError):
                    os.remove(tmp)
            raise
        for path, tmp in staged.items():
            os.replace(tmp, path)
        for files in existing.values():
            for old in files:
                if old not in staged:
                    os.remove(old)


# A tfrecord record: uint64 length (little-endian), uint32 CRC of the length, the data, uint32 CRC of the data.
_LENGTH = struct.Struct("<Q")
_CRC_BYTES = 4


def record_count(path: str | os.PathLike) -> int:
    """Records in the tfrecord file ``path``, from their length fields: 8 bytes read a record, whatever its
    size (an ImageNet validation set of 6.4 GB is counted without reading its images).

    Raises:
        DataError: naming the file when it ends inside a record (truncated, or not a tfrecord file).
    """
    size = os.path.getsize(path)
    count = offset = 0  # records complete so far, and where the next one starts
    with open(path, "rb", buffering=0) as f:
        while offset < size:
            header = f.read(_LENGTH.size)
            end = offset + _LENGTH.size + _CRC_BYTES + _CRC_BYTES
            end += _LENGTH.unpack(header)[0] if len(header) == _LENGTH.size else size
            if end > size:  # a cut record, or a length that is not one
                raise data_error(
                    path, f"ends inside record number {count + 1} (a truncated copy, or not a tfrecord file)"
                )
            offset = f.seek(end)
            count += 1
    return count
