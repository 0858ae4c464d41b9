"""Run moto's server on 127.0.0.1 and an ephemeral port, print the port, and stop when
standard input closes (so it never outlives the process that started it).

Run by the runtime venv's Python, which has moto's server dependencies (Flask, flask-cors).
"""

import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
