"""Facts about the shapes dataset that torch-free code (plugin registration, CLI listings) needs."""

IMAGE_SIZE = 32
CLASS_NAMES = ("circle", "square", "triangle", "ring", "plus", "star", "crescent", "heart", "bar", "semicircle")
NUM_CLASSES = len(CLASS_NAMES)
#: split → first seed index; splits are disjoint seed ranges
SPLITS = {"train": 0, "val": 10_000_000, "test": 20_000_000}
MAX_SPLIT_SIZE = 10_000_000
