/**
 * The site's QEMU argument template (`qemu_args`): `{name}` placeholders filled in per job.
 * A job whose template names a variable nobody set fails to start with a message naming it,
 * rather than booting QEMU with a literal `{name}` in its arguments.
 */
import { HostStartError } from "./host_driver.ts";

/** What a template variable's name may be. */
export const TEMPLATE_NAME = /^[a-z_][a-z0-9_]*$/;

/** Fills `{name}` placeholders in every argument from `variables`. */
export function expandQemuArgs(template: string[], variables: Record<string, string>): string[] {
  return template.map((arg) =>
    arg.replace(/\{([^}]*)\}/g, (_, name: string) => {
      const value = variables[name];
      if (value === undefined) {
        throw new HostStartError(
          `Cannot start a VM: qemu_args argument "${arg}" names the unknown variable "{${name}}" ` +
            `(known: ${Object.keys(variables).sort().map((known) => `{${known}}`).join(", ")})`,
        );
      }
      return value;
    })
  );
}

/** Whether the template places the job's disk itself. */
export function templateAttachesDisk(template: string[]): boolean {
  return template.some((arg) => arg.includes("{main_disk_image}"));
}

/**
 * The machine when a site sets no `qemu_args`: software emulation of the most capable CPU model
 * (under TCG its features cost nothing, and the guest's programs start faster with them,
 * measured), one CPU, 512 MiB. No network option: the driver adds the network (none, or a user
 * network forwarding the exposed ports) by the rule in `qemu_network.ts`. KVM is never chosen by
 * itself: a `/dev/kvm` that opens can still be unusable (nested setups abort with "failed to set
 * MSR" or hang the guest, seen on these machines), so a site with working KVM says so in
 * `qemu_args`.
 */
export function defaultQemuArgs(): string[] {
  return ["-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512"];
}
