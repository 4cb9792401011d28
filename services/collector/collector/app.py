"""The collector's stages composed in one process: edge and sequencer (tests, single-node `python -m collector`)."""

from __future__ import annotations

from collector.edge.app import Edge
from collector.sequencing.app import SequencerStage
from collector.settings import Settings
from iothub.db import Database


class Pipeline:
    """Edge plus one sequencer replica; each may as well run as its own process (collector.__main__)."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.edge = Edge(settings, db)
        self.sequencer = SequencerStage(settings, db)
        self.bridges = self.edge.bridges
        self.bridge = self.edge.bridge
        self.http = self.edge.http
        self.publisher = self.edge.publisher

    def drained(self, *peers: Pipeline) -> bool:
        """Everything the edges took in is acknowledged to the devices, and judged and published by the
        sequencers (of this pipeline and its peers, which may own the partitions of this one's messages)."""
        group = (self, *peers)
        return (all(b.pending_acks == 0 for p in group for b in p.bridges)
                and all(p.edge.publisher.in_flight == 0 and p.sequencer.publisher.in_flight == 0 for p in group)
                and sum(p.sequencer.consumer.settled for p in group) >= sum(p.edge.ingest.forwarded for p in group))

    def seq_state(self, device_id: str):
        """The sequencer's state of a device."""
        return self.sequencer.sequencer.state(device_id)

    def start(self, timeout: float = 15.0) -> Pipeline:
        """Sequencer first, so the first bridged message finds its partition owned."""
        self.sequencer.start(timeout)
        self.edge.start(timeout)
        return self

    def stop(self) -> None:
        """Edge first, so the sequencer sees everything the edge took in."""
        self.edge.stop()
        self.sequencer.stop()
