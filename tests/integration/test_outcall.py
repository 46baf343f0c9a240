"""Service-to-service calls (nrpc_call_request): answers and errors come back
through the calling service, and the caller's trace id and request id travel
on to the called service's log."""

import unittest

import harness

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE


class OutcallTest(harness.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        def start(stack):
            cls.nats = stack.nats()
            env = {"NRPC_ACCESS_LOG": "1"}
            cls.greeting = stack.service("greeting_service", cls.nats, env=env)
            cls.relay = stack.service("test_faulty_service", cls.nats, env=env,
                                          ready_subject="faulty_service.relay")
            cls.nc = harness.NatsClient(cls.nats.url)
        cls.start_stack("outcall", start)

    def relay_call(self, body, request_id):
        return self.nc.request("faulty_service.relay", body.encode(),
                               headers={"traceparent": TRACEPARENT, "X-Request-Id": request_id})

    def test_answer_comes_back(self):
        m = self.relay_call('[["greeting_service.hello", ["Bob"], {"last_name": "Ross"}]]', "rid-ok")
        self.assertNatsOk(m, '[["Hello, Bob Ross"], {}]', what="relay to hello")

    def test_trace_travels_to_the_called_service(self):
        m = self.relay_call('[["greeting_service.hello", ["Trace"]]]', "rid-trace")
        self.assertNatsOk(m, '[["Hello, Trace"], {}]', what="relay to hello")
        want = "trace=%s request_id=rid-trace" % TRACE

        def logged():
            return want in self.greeting.log_text() and want in self.relay.log_text()
        harness.wait_for(logged, 5, what="both service logs naming the caller's trace and request id")

    def test_errors_come_back(self):
        m = self.relay_call('[["greeting_service.nope"]]', "rid-404")
        self.assertNatsError(m, 404, "not_found", "greeting_service.nope", what="relay to no rpc")
        m = self.relay_call('[["greeting_service.hello", [1]]]', "rid-400")
        self.assertNatsError(m, 400, "invalid_argument", "first_name", what="relay with a bad arg")
        m = self.relay_call('[["greeting_service.hello_sleep", ["x", 2]], {"timeout": 0.3}]', "rid-504")
        self.assertNatsError(m, 504, "timeout", "greeting_service.hello_sleep", what="relay timeout")


if __name__ == "__main__":
    unittest.main()
