import sys

from cosim.cli import main

if __name__ == "__main__":  # not when a spawned child process (cosim.second_process) imports it
    sys.exit(main())
