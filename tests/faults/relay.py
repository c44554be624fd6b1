"""A plain TCP relay: `python -m tests.faults.relay LISTEN_HOST TARGET_HOST PORT...`.

Listens on LISTEN_HOST:PORT for each PORT and pipes every connection to TARGET_HOST:PORT.
The network-namespace fault runs one inside the namespace (127.0.0.1 -> the host end of
the veth pair) and one on the host (the host end -> 127.0.0.1), so a gateway inside the
namespace reaches the private services at their usual 127.0.0.1 addresses (the Tansu
broker advertises 127.0.0.1) while all its traffic crosses the shaped veth link.
"""
from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def main(listen: str, target: str, ports: list[int]) -> None:
    def handler(port: int):  # noqa: ANN202
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(target, port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return handle

    servers = [await asyncio.start_server(handler(port), listen, port, reuse_address=True) for port in ports]
    print("relay ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]))
