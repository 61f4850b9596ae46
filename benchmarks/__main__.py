"""``python -m benchmarks``: vizkit vs its peers and the limit, then the memory check."""

from . import memory, peers

if __name__ == "__main__":
    peers.main()
    memory.main()
