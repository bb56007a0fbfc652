import sys
from regolo.server.specs import LaunchCommand
class FakeRuntime:
    name = "fake-server"
    def available(self): return True
    def supports(self, a, r): return True
    def launch_command(self, spec, host, port):
        return LaunchCommand(argv=(sys.executable, "-m", "tests.support.fake_openai_server", "--port", str(port), "--id", spec.replica_id), env=(("PYTHONPATH", "/work/main"),))
def fake_runtimes(name):
    return FakeRuntime()
