"""The harness itself: what the other modules rely on without checking."""

import socket
import unittest
from unittest import mock

import harness


class FreePortTest(unittest.TestCase):

    def test_a_port_is_never_handed_out_twice(self):
        """A stopped server keeps its port: when the kernel offers that port
        again (it is free), free_port takes the next one instead."""
        offered = iter([41001, 41001, 41001, 41002, 41001, 41003])
        with mock.patch.object(harness, "_kernel_port", lambda: next(offered)), \
                mock.patch.object(harness, "_handed_out", set()):
            self.assertEqual([harness.free_port() for _ in range(3)], [41001, 41002, 41003])

    def test_a_stopped_postgres_keeps_its_port(self):
        """The clash seen in test_things: Postgres started and stopped, then a
        nats-server took its port before Postgres came back."""
        pg = harness.start_postgres(name="postgres-late")
        try:
            port = pg.port
            pg.stop()
            for _ in range(300):
                self.assertNotEqual(harness.free_port(), port)
            pg.start()
            self.assertEqual(pg.port, port)
            self.assertEqual(pg.psql("SELECT 1"), "1")
        finally:
            pg.close()

    def test_ports_are_free(self):
        port = harness.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    unittest.main()
