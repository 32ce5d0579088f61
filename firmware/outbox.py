# The clip queue on flash. Every clip is written here while it is captured (the protocol
# frames that go on the wire, in order) and stays until the receiver acknowledges it, so a
# clip survives a receiver that is down, a dropped connection and a reboot. The queue is
# bounded by a number of clips and a number of bytes; when a new clip needs room, the oldest
# finished clip is deleted and counted in `dropped`, which is kept on flash.
#
# Files, in the folder `outbox.d` of the working directory (the flash's root on the device,
# the sim's working directory on the PC; a name no module can have, since on the device the
# modules live in that folder too and a folder `outbox` would shadow outbox.py):
#   <id>.part    the clip being captured: frames are appended as the recorder hands them out
#   <id>.clip    a finished clip: renamed from .part once its clip_end frame is written, so a
#                crash or power loss never leaves a half-written clip looking complete
#   state.json   {"next_clip_id": n, "clips_dropped": n}, replaced through state.tmp + rename
#
# At boot a .part file (a clip cut short by a reset) is deleted and counted as dropped, and
# so is a .clip file that does not end with its own intact clip_end frame.
#
# Clip ids: an id is reserved in state.json before the clip uses it, so no two clips ever get
# the same id, across reboots too. A flash with no state.json (new, or erased) starts at a
# random id below 2**29, so a device whose flash was erased does not reuse the ids of clips
# the receiver already has (it stores a clip once per device and id). Ids stay below 2**30,
# small ints on the device.
import json
import os

import protocol
from micropython import const

DIR = "outbox.d"
_STATE = "state.json"
_STATE_TMP = "state.tmp"
_PART = ".part"
_CLIP = ".clip"
_RANDOM_IDS = const(0x1FFFFFFF)  # a new flash starts at 1 + a random id below 2**29
_MAX_ID = const(0x3FFFFFFF)
_END_BYTES = const(19)  # a clip_end frame: header 6, clip_id 4, samples 4, reason 1, CRC 4
_STAT_SIZE = const(6)  # os.stat()[6]


class Outbox:
    """Finished clips (ids, oldest first) on flash, one clip being written, one being read.

    begin() a clip, write() its frames, finish() it (or abandon() it); ack() deletes a
    finished clip. start_reading(id) / read(buf) / stop_reading() read a finished clip back.
    """

    def __init__(self, max_clips, max_bytes, root=DIR, say=print):
        if max_clips < 1:
            raise ValueError("outbox: max_clips must be at least 1")
        self.max_clips = max_clips
        self.max_bytes = max_bytes
        self._root = root
        self._say = say
        self.ids = []  # type: list  # finished clips, oldest first
        self._sizes = {}  # bytes of each finished clip
        self._samples = {}  # samples of each finished clip (from its clip_end)
        self.bytes = 0  # every clip file, the one being written included
        self.dropped = 0
        self.writing = 0  # the id of the clip being written, 0 when none
        self.reading = 0  # the id of the clip being read, 0 when none
        self._next_id = 0
        self._file = None
        self._written = 0
        self._reader = None
        _make_dir(root)
        self._load_state()
        lost = self._scan()
        while len(self.ids) > max_clips or (self.bytes > max_bytes and self.ids):
            self._drop_oldest()
        if lost:
            self.dropped += lost
            self._say("outbox: %d unfinished or damaged clips removed at boot" % lost)
            self._save_state()

    def _path(self, clip_id, suffix):
        return "%s/%d%s" % (self._root, clip_id, suffix)

    def _load_state(self):
        self._next_id = 1 + (int.from_bytes(os.urandom(4), "little") & _RANDOM_IDS)
        try:
            with open(self._root + "/" + _STATE) as f:
                state = json.load(f)
            next_id = state["next_clip_id"]
            dropped = state["clips_dropped"]
        except OSError:
            return  # a new flash
        except (ValueError, KeyError, TypeError):
            next_id = dropped = -1
        if not _whole(next_id, 1, _MAX_ID) or not _whole(dropped, 0, _MAX_ID):
            self._say("outbox: %s is damaged; clip ids start afresh" % _STATE)
            return
        self._next_id = next_id
        self.dropped = dropped

    def _save_state(self):
        tmp = self._root + "/" + _STATE_TMP
        with open(tmp, "w") as f:
            json.dump({"next_clip_id": self._next_id, "clips_dropped": self.dropped}, f)
        os.rename(tmp, self._root + "/" + _STATE)

    def _scan(self):
        """The finished clips on flash; returns how many files were not whole clips."""
        lost = 0
        for name in os.listdir(self._root):
            if name.endswith(_PART):
                os.remove(self._root + "/" + name)
                lost += 1
                continue
            if not name.endswith(_CLIP):
                continue
            digits = name[: -len(_CLIP)]
            if not digits.isdigit():
                continue
            clip_id = int(digits)
            path = self._root + "/" + name
            size = int(os.stat(path)[_STAT_SIZE])
            samples = _finished_samples(path, clip_id, size)
            if samples < 0:
                os.remove(path)
                lost += 1
                continue
            self.ids.append(clip_id)
            self._sizes[clip_id] = size
            self._samples[clip_id] = samples
            self.bytes += size
        self.ids.sort()
        if self.ids and self.ids[-1] >= self._next_id:
            self._next_id = self.ids[-1] + 1
        return lost

    def begin(self):
        """Start writing a new clip; returns its id, reserved on flash first. The oldest
        finished clips go if the queue is at max_clips."""
        if self._file is not None:
            self.abandon()
        clip_id = self._next_id
        self._next_id = clip_id + 1 if clip_id < _MAX_ID else 1
        self._save_state()
        while len(self.ids) >= self.max_clips:
            self._drop_oldest()
        self._file = open(self._path(clip_id, _PART), "wb")
        self.writing = clip_id
        self._written = 0
        return clip_id

    def write(self, data):
        """Append bytes to the clip being written; the oldest finished clips go while the
        queue would exceed max_bytes. OSError when the flash fails (then abandon())."""
        f = self._file
        if f is None:
            raise OSError("outbox: no clip is being written")
        n = len(data)
        while self.bytes + n > self.max_bytes and self.ids:
            self._drop_oldest()
        f.write(data)
        self._written += n
        self.bytes += n

    def finish(self, samples):
        """The clip being written is complete (its clip_end frame written): it joins the
        queue under its final name."""
        clip_id = self.writing
        f = self._file
        if f is None:
            raise OSError("outbox: no clip is being written")
        self._file = None
        self.writing = 0
        try:
            f.close()
            os.rename(self._path(clip_id, _PART), self._path(clip_id, _CLIP))
        except OSError:
            self.bytes -= self._written
            self.dropped += 1
            _remove_quietly(self._path(clip_id, _PART))
            raise
        self.ids.append(clip_id)
        self._sizes[clip_id] = self._written
        self._samples[clip_id] = samples

    def abandon(self):
        """Give up the clip being written (the flash failed): deleted and counted."""
        clip_id = self.writing
        f = self._file
        if f is None:
            return
        self._file = None
        self.writing = 0
        self.bytes -= self._written
        self.dropped += 1
        try:
            f.close()
            os.remove(self._path(clip_id, _PART))
            self._save_state()
        except OSError as e:
            self._say("outbox: clip %d: %s" % (clip_id, e))

    def ack(self, clip_id):
        """The receiver has the clip: delete it. False when it is not queued (acked
        before, dropped, or not finished)."""
        if clip_id not in self._sizes:
            return False
        self._remove(clip_id)
        return True

    def _drop_oldest(self):
        self.discard(self.ids[0], "full")

    def discard(self, clip_id, why):
        """Delete a queued clip unsent (the queue is full, or its file cannot be read):
        counted as dropped."""
        self._remove(clip_id)
        self.dropped += 1
        self._say("outbox: %s, clip %d dropped" % (why, clip_id))
        self._save_state()

    def _remove(self, clip_id):
        if self.reading == clip_id:
            self.stop_reading()
        # a file the flash fails to delete is found again at the next boot (and resent:
        # the receiver keeps one copy)
        _remove_quietly(self._path(clip_id, _CLIP))
        self.ids.remove(clip_id)
        self.bytes -= self._sizes.pop(clip_id)
        del self._samples[clip_id]

    def samples(self, clip_id):
        return self._samples[clip_id]

    def start_reading(self, clip_id):
        self.stop_reading()
        self._reader = open(self._path(clip_id, _CLIP), "rb")
        self.reading = clip_id

    def read(self, buf):
        """The next bytes of the clip being read, into buf; returns their number, 0 at the
        end of the clip."""
        reader = self._reader
        if reader is None:
            return 0
        return reader.readinto(buf)

    def stop_reading(self):
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.reading = 0


def _whole(value, lo, hi):
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass  # not there, or the flash failed: the boot scan sees to what is left


def _make_dir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass  # it exists (anything else fails at the first file)


def _finished_samples(path, clip_id, size):
    """The sample count in the clip_end frame that ends the file, or -1 when the file does
    not end with an intact clip_end of this clip."""
    if size < _END_BYTES:
        return -1
    with open(path, "rb") as f:
        f.seek(size - _END_BYTES)
        tail = f.read(_END_BYTES)
    try:
        msg = protocol.decode(tail)
    except protocol.ProtocolError:
        return -1
    if msg["type"] != "clip_end" or msg["clip_id"] != clip_id:
        return -1
    return msg["samples"]
