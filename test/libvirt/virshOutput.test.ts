import test from "ava";
import fc from "fast-check";
import { domainTypeForUri, domainXml } from "../../runtime/libvirt/domainXml.ts";
import { reasonOf } from "../../runtime/libvirt/libvirtHypervisor.ts";
import { cleanVirshOutput, isValidLibvirtUri, virshErrors } from "../../runtime/libvirt/virshSession.ts";
import {
  cpuTimeMsFromDomstats,
  isGuestPingReply,
  parseDominfo,
  parseDomstats,
  powerStateOf,
  virtualizationFromXml,
} from "../../runtime/libvirt/virshOutput.ts";

test("domstats: numeric states, a crash hidden as shut off (reason crashed), cpu time in ns", (t) => {
  const output = "Domain: 'a'\n  state.state=1\n  state.reason=1\n  cpu.time=1500000000\n\nDomain: 'b'\n  state.state=5\n  state.reason=3\n";
  const [a, b] = parseDomstats(output);
  t.is(a!.name, "a");
  t.is(powerStateOf(a!.fields.get("state.state"), a!.fields.get("state.reason")), "running");
  t.is(cpuTimeMsFromDomstats(a!.fields), 1_500);
  t.is(powerStateOf(b!.fields.get("state.state"), b!.fields.get("state.reason")), "crashed");
  t.is(powerStateOf("5", "1"), "shutoff");
  t.is(powerStateOf("3", "0"), "paused");
  t.is(powerStateOf("0", "0"), undefined, "no state is not guessed");
  t.is(powerStateOf("99", "0"), undefined);
  t.is(cpuTimeMsFromDomstats(new Map([["cpu.time", "-5"]])), undefined);
});

test("dominfo, dumpxml and guest-ping replies", (t) => {
  t.deepEqual(parseDominfo("Id:             1\nName:           test\nOS Type:        linux\nState:          running\nCPU time:       12.5s\n"), {
    state: "running",
    cpuTimeMs: 12_500,
    osType: "linux",
  });
  t.deepEqual(parseDominfo("CPU time: lots\n"), {});
  t.is(virtualizationFromXml("<domain><os>\n<type arch='x86_64' machine='pc'>hvm</type></os></domain>"), "full");
  t.is(virtualizationFromXml("<domain><os><type>xen</type></os></domain>"), "para");
  t.is(virtualizationFromXml("<domain><type>hvm</type></domain>"), undefined, "a type outside <os> is not the os type");
  t.true(isGuestPingReply('{"return":{}}\n'));
  t.false(isGuestPingReply('{"error":{"class":"x"}}'));
  t.false(isGuestPingReply("[]"));
  t.false(isGuestPingReply(""));
});

test("session output: prompts and echoed commands are dropped, error lines collected", (t) => {
  const raw = "virsh # domstate web1\nrunning\n\nvirsh # echo \"HARING-ab\"\"cd-1\"\n";
  t.is(cleanVirshOutput(raw), "running\n\n");
  t.is(virshErrors("error: failed to get domain 'x'\nerror: more\nfine\n"), "failed to get domain 'x'; more");
  t.is(reasonOf({ ok: false, failure: "error", error: "failed to get domain 'x'", output: "" }), "not-found");
  t.is(reasonOf({ ok: false, failure: "error", error: "this function is not supported by the connection driver: virDomainQemuAgentCommand", output: "" }), "unsupported");
  t.is(reasonOf({ ok: false, failure: "error", error: "Requested operation is not valid: domain is not running", output: "" }), "invalid");
  t.is(reasonOf({ ok: false, failure: "session", error: "virsh exited", output: "" }), "unavailable");
});

test("uris and domain XML: only well-formed URIs; names escaped; para is xen PV on Xen, hvm on KVM", (t) => {
  t.true(isValidLibvirtUri("qemu:///system"));
  t.true(isValidLibvirtUri("xen:///system"));
  t.true(isValidLibvirtUri("qemu+ssh://root@host/system"));
  t.false(isValidLibvirtUri("qemu:///system' ; rm -rf /"));
  t.false(isValidLibvirtUri("not a uri"));
  t.is(domainTypeForUri("qemu:///system"), "kvm");
  t.is(domainTypeForUri("qemu+ssh://h/system"), "kvm");
  t.is(domainTypeForUri("xen:///system"), "xen");
  t.is(domainTypeForUri("vbox:///session"), undefined);
  const para = { vmId: "pv1", virtualization: "para", vcpus: 1, memoryMiB: 256 } as const;
  t.regex(domainXml(para, "xen"), /<type>xen<\/type>/);
  t.regex(domainXml(para, "kvm"), /<type>hvm<\/type>/);
  t.regex(domainXml({ ...para, vmId: "a'b" }, "test"), /<name>a&#39;b<\/name>/);
  t.throws(() => domainXml(para, "xen", "not-a-uuid"), { instanceOf: RangeError });
});

test("no parser throws on arbitrary text, and none accepts more than its bounds", (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 2_000 }), (text) => {
      const domains = parseDomstats(text);
      parseDominfo(text);
      virtualizationFromXml(text);
      isGuestPingReply(text);
      cleanVirshOutput(text);
      virshErrors(text);
      return domains.every((domain) => domain.fields.size <= 256);
    }),
    { numRuns: 2_000, seed: 42 },
  );
  const many = Array.from({ length: 5_000 }, (_, index) => `Domain: 'd${index}'\n  state.state=1`).join("\n");
  t.is(parseDomstats(many).length, 4_096);
});
