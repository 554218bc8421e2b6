"""Where raw data files come from: a local mirror folder, or a base URL whose files
are downloaded once into a cache folder.

`prepare.source` names the base: "official" (the data set's official host), an
http(s) URL, a file:// URL or a folder. Files are then named relative to the
base, with the official layout, so a mirror is just a copy of the official files.
"""
from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from latentsketch.errors import InputError
from latentsketch.io import atomic_path

log = logging.getLogger("latentsketch")

OMNIGLOT_OFFICIAL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
QUICKDRAW_OFFICIAL = "https://storage.googleapis.com/quickdraw_dataset/full"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60
RETRY_WAIT_S = 2.0  # doubled after every failed try


@dataclass(frozen=True)
class Source:
    """A base location of raw files: a local folder, or a URL with a cache folder."""
    base: str
    remote: bool
    cache: Path
    retries: int = 3

    def locate(self, relative: str, what: str, max_lines: int | None = None) -> Path:
        """Local path of `relative` under the base, downloaded first when remote.

        With `max_lines`, only the first lines of a remote text file are fetched
        (Quick, Draw! files hold up to ~300,000 drawings; we need a few thousand).
        """
        if not self.remote:
            return self._local(relative, what)
        url = f"{self.base.rstrip('/')}/{urllib.parse.quote(relative)}"
        target = self.cache / _cache_name(self.base, relative, max_lines)
        if not target.exists():
            download(url, target, what, self.retries, max_lines)
        return target

    def listing(self, folder: str, suffix: str) -> list[str]:
        """Names (without suffix) of the files in a local mirror folder."""
        if self.remote:
            raise ValueError("a remote source cannot be listed")
        where = Path(self.base) / folder
        if not where.is_dir():
            raise InputError(f"data folder {where}: not found; set prepare.source to the "
                             f"folder that holds {folder}/, or to official to download.")
        return sorted(p.name[: -len(suffix)] for p in where.iterdir()
                      if p.name.endswith(suffix))

    def _local(self, relative: str, what: str) -> Path:
        path = Path(self.base) / relative
        if not path.exists():
            raise InputError(f"{what} {path}: not found; put the official file there, "
                             "fix prepare.source, or set prepare.source: official to "
                             "download it.")
        return path


def open_source(source: str, official: str, cache: str, retries: int) -> Source:
    """Resolve `prepare.source` ("official", a URL or a folder) into a Source."""
    cache_dir = Path(cache).expanduser()
    if source == "official":
        return Source(official, remote=True, cache=cache_dir, retries=retries)
    scheme = urllib.parse.urlparse(source).scheme
    if scheme in ("http", "https"):
        return Source(source, remote=True, cache=cache_dir, retries=retries)
    if scheme == "file":
        folder = urllib.parse.unquote(urllib.parse.urlparse(source).path)
        return Source(folder, remote=False, cache=cache_dir)
    return Source(source, remote=False, cache=cache_dir)


def _cache_name(base: str, relative: str, max_lines: int | None) -> Path:
    host = urllib.parse.urlparse(base).netloc or "local"
    name = Path(host) / urllib.parse.urlparse(base).path.strip("/") / relative
    if max_lines is None:
        return name
    return name.with_name(f"{name.stem}.first{max_lines}{name.suffix}")


def download(url: str, target: Path, what: str, retries: int,
             max_lines: int | None = None) -> None:
    """Fetch `url` into `target` atomically, retrying transient failures."""
    attempts = max(1, retries)
    for attempt in range(1, attempts + 1):
        try:
            with atomic_path(target) as tmp:
                _fetch(url, tmp, max_lines)
            return
        except urllib.error.HTTPError as error:
            if error.code in (403, 404, 410):
                raise InputError(f"{what} {url}: the server answered {error.code}; check "
                                 "the file or category name, or use a local mirror "
                                 "(prepare.source: <folder>).") from error
            failure = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError, _ShortRead) as error:
            failure = str(error) or type(error).__name__
        if attempt < attempts:
            wait = RETRY_WAIT_S * 2 ** (attempt - 1)
            log.info("download %s failed (%s); try %d/%d in %.0fs", url, failure,
                     attempt + 1, attempts, wait)
            time.sleep(wait)
    raise InputError(f"{what} {url}: download failed after {attempts} tries ({failure}); "
                     "check the network, raise prepare.download_retries, or fetch the "
                     f"file by hand into a folder and set prepare.source to that folder.")


class _ShortRead(OSError):
    """The connection closed before Content-Length bytes arrived."""


def _fetch(url: str, destination: Path, max_lines: int | None) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and max_lines is None else None
        with open(destination, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, leave=False,
                desc=Path(urllib.parse.unquote(url)).name) as progress:
            if max_lines is None:
                received = _copy_bytes(response, out, progress)
            else:
                received = _copy_lines(response, out, progress, max_lines)
    if total is not None and received != total:
        raise _ShortRead(f"received {received} of {total} bytes")


def _copy_bytes(response, out, progress) -> int:
    received = 0
    while chunk := response.read(CHUNK_BYTES):
        out.write(chunk)
        received += len(chunk)
        progress.update(len(chunk))
    return received


def _copy_lines(response, out, progress, max_lines: int) -> int:
    received = 0
    for _ in range(max_lines):
        line = response.readline()
        if not line:
            break
        out.write(line)
        received += len(line)
        progress.update(len(line))
    return received

