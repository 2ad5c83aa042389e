// Global setup for the workerd project: Node-side servers (hostile upstreams, a reference PDS)
// that tests inside workerd reach over loopback are started here and provided to tests.
export default function setup() {}
