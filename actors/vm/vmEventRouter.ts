import type { Hypervisor, HypervisorEvent } from "../ports/hypervisor.ts";

/**
 * One hypervisor event subscription per node, routed to the monitor of the VM
 * it names: with N VMs on a host, N subscriptions that each filter every event
 * would cost N² per burst of events.
 */
export const maxRoutedVms = 100_000;

export interface VmEventRouter {
  /** Routes events for `vmId` to `handler`; replaces an earlier handler of the same VM. */
  route(vmId: string, handler: (event: HypervisorEvent) => void): { unsubscribe(): void };
  /** Events for VMs nobody watches (defined outside haring, or already forgotten). */
  readonly unroutedEvents: number;
  dispose(): void;
}

export function createVmEventRouter(hypervisor: Hypervisor): VmEventRouter {
  const handlers = new Map<string, (event: HypervisorEvent) => void>();
  let unrouted = 0;
  const subscription = hypervisor.onEvent((event) => {
    const handler = handlers.get(event.vmId);
    if (handler === undefined) unrouted++;
    else handler(event);
  });
  return {
    route(vmId, handler) {
      if (!handlers.has(vmId) && handlers.size >= maxRoutedVms) throw new RangeError(`more than ${maxRoutedVms} vms routed on one node`);
      handlers.set(vmId, handler);
      return {
        unsubscribe: () => {
          if (handlers.get(vmId) === handler) handlers.delete(vmId);
        },
      };
    },
    get unroutedEvents() {
      return unrouted;
    },
    dispose() {
      subscription.unsubscribe();
      handlers.clear();
    },
  };
}
