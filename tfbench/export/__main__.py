"""`python -m tfbench.export SAVED SAMPLES OUT OPTIONS`: one TFLite conversion in a child process.

int8 calibration can crash the whole interpreter on some layers, so the exporter converts in a
fresh process started this way and reads the result (or the crash) back.
"""

import sys

from tfbench.export.tflite import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
