/**
 * `tml supervisor qemu`'s configuration: the keys every supervisor has, plus the keys of
 * Treadmill's `[qemu]` table under the same names (`qemu_binary`, `qemu_img_binary`,
 * `qemu_args`, `start_script`, `working_disk_max_bytes`), so a Treadmill site's settings port
 * over. With none of them set, a job boots under software emulation (`qemu_args.ts` says why
 * KVM is opt-in).
 */
import { z } from "zod";
import { configBool, configNumber } from "../../lib/config.ts";
import { SupervisorConfig } from "./config.ts";
import { TEMPLATE_NAME } from "./qemu_args.ts";

export const QemuSupervisorConfig = SupervisorConfig.extend({
  /** Default: `qemu-system-x86_64` on PATH, installed from Debian's `qemu-system-x86`. */
  qemu_binary: z.string().min(1).optional(),
  /** Default: `qemu-img` on PATH, installed from Debian's `qemu-utils`. */
  qemu_img_binary: z.string().min(1).optional(),
  /**
   * The machine's QEMU arguments, a template: `{job_id}`, `{job_workdir}`, `{main_disk_image}`,
   * `{state_dir}` and the start script's variables are filled in per job. tml adds what it
   * needs itself (console, QMP, the puppet's channel and secret, the boot method), attaches
   * the job's disk as virtio unless an argument names `{main_disk_image}`, and gives the VM its
   * network unless an argument is `-nic`, `-netdev` or `-net`: with a `rendezvous` server, a
   * user network (restricted: no way out) forwarding each `rendezvous_services` port from a free
   * port on 127.0.0.1; else none. A template with its own network (`-nic none` included) gets
   * no more, and its guests' ports are reachable only through its own user-network forwards.
   */
  qemu_args: z.preprocess(
    parseJsonList,
    z.array(
      z.string().refine(
        (arg) => [...arg.matchAll(/\{([^}]*)\}/g)].every(([, name]) => TEMPLATE_NAME.test(name)),
        "expected template variables like {job_id}: lowercase letters, digits and _",
      ),
      { error: 'expected a JSON array of QEMU arguments, e.g. ["-m", "2048"]' },
    ).min(1),
  ).optional(),
  /**
   * Run before each job's VM starts, with `TML_JOB_ID` and `TML_JOB_WORKDIR` set; each stdout
   * line `tml-set-variable:KEY=VALUE` adds a template variable (e.g. a board's USB address).
   */
  start_script: z.string().min(1).optional(),
  /**
   * Size of the disk a job sees: the thin overlay is extended to it, and images whose disk is
   * larger are refused. Default: the image's own disk size.
   */
  working_disk_max_bytes: configNumber().pipe(z.number().int().positive()).optional(),
  /**
   * Resume each job's VM from a snapshot of its image booted once, instead of booting it
   * (seconds saved per job under software emulation). Jobs whose machine depends on the job (a
   * `start_script`, or `qemu_args` naming `{job_id}` or `{job_workdir}`) boot cold anyway.
   */
  warm_start: configBool().default(true),
  /** Where warm-start snapshots are kept (default `<state_dir>/snapshots`). */
  snapshot_dir: z.string().min(1).optional(),
  /** Where images are cached (default `<state_dir>/images`). */
  site_cache: z.string().min(1).optional(),
});
export type QemuSupervisorConfig = z.infer<typeof QemuSupervisorConfig>;

/**
 * `qemu_args` from the environment or a flag is a JSON array: QEMU arguments hold commas and
 * spaces (`file=…,format=qcow2`), so neither can separate them.
 */
function parseJsonList(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value; // The schema then says it expected an array.
  }
}
