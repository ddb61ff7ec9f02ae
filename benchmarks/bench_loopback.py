"""Loopback frames/s through the real driver path: batches against batch size 1.

    .venv/bin/python benchmarks/bench_loopback.py [--frames N] [--batch B] [--size BYTES]

Each frame goes host -> MiniportSendPackets -> mock NIC TX ring -> loopback
wire -> RX ring -> ISR -> DPC -> indication -> host copy -> MiniportReturnPacket,
through the same synchronous API the trio host uses.  Both runs are in this
process, one after the other; the ratio (target >= 10x) and the per-frame
cost of the batched run are what matter on a noisy machine.
"""
import argparse
import time

from ndisproxy import DriverImage, drivers
from ndisproxy.host import DEFAULT_MAC

MAC = bytes.fromhex(DEFAULT_MAC.replace(":", ""))


def run(frames, batch, size):
    frame = MAC + bytes.fromhex("02aabbccddee0800") + bytes(size - 14)
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter()
        adapter.attach_mocknic(DEFAULT_MAC)
        adapter.initialize()
        adapter.set_stack_sampling(1024)
        adapter.set_raw("OID_GEN_CURRENT_PACKET_FILTER", (1).to_bytes(4, "little"))
        chunk = [frame] * batch
        received = 0
        start = time.perf_counter()
        for _ in range(frames // batch):
            adapter.send(chunk)
            while adapter.service_interrupt():
                pass
            received += len(adapter.receive_frames())
            adapter.return_packets()
        elapsed = time.perf_counter() - start
        adapter.halt()
    assert received == frames // batch * batch, (received, frames)
    return received / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="frame size in bytes")
    args = parser.parse_args()
    single = run(max(args.frames // 16, 1000), 1, args.size)
    batched = run(args.frames, args.batch, args.size)
    print(f"{args.size}-byte frames through mocknic.sys on the loopback wire:")
    print(f"  batch 1    {single:12,.0f} frames/s   {1e6 / single:7.2f} µs/frame   1.00x")
    print(f"  batch {args.batch:<4} {batched:12,.0f} frames/s   {1e6 / batched:7.2f} µs/frame"
          f"   {batched / single:5.2f}x   (target >= 10x)")


if __name__ == "__main__":
    main()
