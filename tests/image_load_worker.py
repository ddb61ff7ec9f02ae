"""Loads driver images for tests/test_fuzz_images.py, one per request.

Run as a script (a process of its own, so a loader crash is a dead worker
the test reports, not a dead test run).  Requests on stdin: a 4-byte
little-endian length and that many bytes of image.  Replies on stdout, one
JSON line each: {"loaded": size} or {"error": class name, "message": text}.
"""
import json
import struct
import sys

from ndisproxy import DriverImage, NdisProxyError


def main():
    requests, replies = sys.stdin.buffer, sys.stdout
    while True:
        head = requests.read(4)
        if len(head) < 4:
            return
        data = requests.read(struct.unpack("<I", head)[0])
        try:
            with DriverImage.load("fuzzed.sys", data=data, run_driver_entry=False) as image:
                reply = {"loaded": image.size}
        except NdisProxyError as exc:
            reply = {"error": type(exc).__name__, "message": str(exc)}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
