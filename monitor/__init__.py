"""monitor: watch public media for topics and email analysts when a topic spikes."""

__version__ = "0.1.0"
