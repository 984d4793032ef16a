"""ygg.runtimestate: runtime peer changes, kept in a file beside the config."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from ygg import config
from ygg.runtimestate import (
    RuntimePeers,
    RuntimeState,
    StateError,
    read_state,
    state_path,
    write_state,
)

CONFIG, _ = config.parse(
    json.dumps({"Peers": ["tcp://a:1", "tcp://b:1"], "InterfacePeers": {"eth0": ["tcp://c:1"]}})
)


class StateTests(SynchronousTestCase):
    def test_apply_on_top_of_the_config(self) -> None:
        state = RuntimeState(
            added=[("tcp://x:1", ""), ("tcp://a:1", "")], removed=[("tcp://c:1", "eth0")]
        )
        self.assertEqual(
            state.apply(CONFIG), [("tcp://a:1", ""), ("tcp://b:1", ""), ("tcp://x:1", "")]
        )
        self.assertEqual(
            RuntimeState().apply(CONFIG),
            [("tcp://a:1", ""), ("tcp://b:1", ""), ("tcp://c:1", "eth0")],
        )

    def test_kept_relative_to_the_config(self) -> None:
        """Adding a config peer records nothing; removing one records it; adding it back
        undoes that; a runtime peer removed again leaves no trace."""
        state = RuntimeState()
        self.assertFalse(state.note_added(("tcp://a:1", ""), CONFIG))
        self.assertTrue(state.note_removed(("tcp://a:1", ""), CONFIG))
        self.assertEqual(state.removed, [("tcp://a:1", "")])
        self.assertTrue(state.note_added(("tcp://a:1", ""), CONFIG))
        self.assertFalse(state)
        self.assertTrue(state.note_added(("tcp://x:1", "eth1"), CONFIG))
        self.assertFalse(state.note_added(("tcp://x:1", "eth1"), CONFIG))
        self.assertEqual(state.added, [("tcp://x:1", "eth1")])
        self.assertTrue(state.note_removed(("tcp://x:1", "eth1"), CONFIG))
        self.assertFalse(state)

    def test_data_round_trip_and_errors(self) -> None:
        state = RuntimeState(added=[("tcp://x:1", "eth0")], removed=[("tcp://a:1", "")])
        self.assertEqual(RuntimeState.from_data(state.to_data()), state)
        for bad, text in (
            ([], "not a JSON object"),
            ({"added": 1}, "added: expected a list"),
            ({"removed": [{"uri": 1}]}, "removed[0]: expected"),
            ({"format": 9}, "format 9 unknown"),
        ):
            with self.assertRaises(ValueError) as caught:
                RuntimeState.from_data(bad)
            self.assertIn(text, str(caught.exception))


class FileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-state-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.config_path = os.path.join(self.dir, "ygg.conf")
        self.path = state_path(self.config_path)

    def test_beside_the_config(self) -> None:
        self.assertEqual(self.path, self.config_path + ".state.json")

    def test_write_read_and_remove_when_empty(self) -> None:
        self.assertEqual(read_state(self.path), RuntimeState())  # no file: empty
        state = RuntimeState(added=[("tls://x:1?password=s", "")])
        write_state(self.path, state)
        self.assertEqual(read_state(self.path), state)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        data = json.loads(open(self.path).read())
        self.assertEqual(data["added"], [{"uri": "tls://x:1?password=s", "interface": ""}])
        self.assertEqual(os.listdir(self.dir), ["ygg.conf.state.json"])  # no temporary left
        write_state(self.path, RuntimeState())
        self.assertEqual(os.listdir(self.dir), [])

    def test_a_bad_file_is_one_error(self) -> None:
        with open(self.path, "w") as f:
            f.write("{not json")
        self.assertRaises(StateError, read_state, self.path)
        peers, notes = RuntimePeers.open(self.config_path)
        self.assertEqual(peers.state, RuntimeState())
        self.assertEqual(len(notes), 1)
        self.assertIn("runtime state ignored", notes[0])

    def test_a_failed_write_leaves_the_old_file(self) -> None:
        write_state(self.path, RuntimeState(added=[("tcp://x:1", "")]))
        os.chmod(self.dir, 0o500)
        self.addCleanup(os.chmod, self.dir, 0o700)
        if os.access(self.dir, os.W_OK):  # root writes anyway: make the target a directory
            os.chmod(self.dir, 0o700)
            os.remove(self.path)
            os.mkdir(self.path)
        self.assertRaises(StateError, write_state, self.path, RuntimeState([("tcp://y:1", "")]))
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".ygg-state")], [])

    def test_runtime_peers_save_on_change(self) -> None:
        peers, notes = RuntimePeers.open(self.config_path)
        self.assertEqual(notes, [])
        peers.peer_added(("tcp://x:1", ""), CONFIG)
        peers.peer_removed(("tcp://a:1", ""), CONFIG)
        again, _ = RuntimePeers.open(self.config_path)
        self.assertEqual(again.state.added, [("tcp://x:1", "")])
        self.assertEqual(again.state.removed, [("tcp://a:1", "")])
        self.assertEqual(
            again.describe(),
            {
                "file": self.path,
                "kept": True,
                "added": [{"uri": "tcp://x:1", "interface": ""}],
                "removed": [{"uri": "tcp://a:1", "interface": ""}],
            },
        )
        cleared = again.clear()
        self.assertEqual(cleared.added, [("tcp://x:1", "")])
        self.assertFalse(os.path.exists(self.path))

    def test_without_a_file_said_once(self) -> None:
        from tests.test_service import Captured

        captured = Captured(self)
        peers, _ = RuntimePeers.open(None)
        peers.peer_added(("tcp://x:1", ""), CONFIG)
        peers.peer_added(("tcp://y:1", ""), CONFIG)
        said = [t for t in captured.texts() if "not kept across restarts" in t]
        self.assertEqual(len(said), 1)
        self.assertEqual(peers.describe()["kept"], False)
