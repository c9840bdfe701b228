// Loaded by path into the workflow sandbox and by the client and the activity worker (the SDK
// needs a module, not an object): failure messages and stack traces go into an encoded payload,
// so the payload codec encrypts them like everything else. Imports nothing that Node-only.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
