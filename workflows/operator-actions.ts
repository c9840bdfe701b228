// One operator action, two doors. The API sends it as an Update: the validator runs the run's
// business rule against its state at that instant and refuses it (409, nothing in history) or
// lets the handler record it, with no check-then-act race. Operators in the Web UI or the CLI
// send the same action as a signal: it runs the same rule, and a signal the rule refuses is
// logged and shown in the run's current details instead of vanishing.
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { condition, log, patched, setHandler } from '@temporalio/workflow';
import { refusalFailure, type Refusal, type RefusalCode } from '../shared/operator-actions.ts';

/**
 * Guards refusals a signal did not meet before (four eyes, an action while another is being
 * carried out): a history recorded before them accepted such a signal and replays accepting it;
 * a new refusal records this marker first.
 */
export const OPERATOR_RULES_PATCH = 'operator-action-rules';
const NEWER_RULES: ReadonlySet<RefusalCode> = new Set(['four_eyes', 'action_pending']);

export interface OperatorActionSpec<Arg, State> {
  signal: SignalDefinition<[Arg]> | SignalDefinition<[Arg?]>;
  update: UpdateDefinition<State, [Arg]>;
  /** The business rule: why the action does not apply to the run as it stands, or null. */
  check(arg: Arg): Refusal | null;
  /**
   * Records the action. Returns, when the run acts on it within the same workflow task (its
   * next status), how to tell it has: the update then answers with that state.
   */
  apply(arg: Arg): void | (() => boolean);
  /** Why an update's argument is malformed beyond a missing `by` (a signal is taken as sent, as it always was). */
  malformed?(arg: Arg): string | null;
  /** The argument a signal sent without one stands for (pause and resume took none before). */
  signalDefault?: Arg;
}

export interface OperatorActions {
  /** Declares one action, as a signal and an Update. */
  accept<Arg>(spec: OperatorActionSpec<Arg, unknown>): void;
  /**
   * Registers the handlers of every declared action. Called once the run can render its details:
   * a signal that arrived before registration is handled at once, and may be refused.
   */
  listen(): void;
  /** The last refused signal as the current details show it (empty when none). */
  ignored(): string;
  /** The run moved on: the last refused signal is no longer news. */
  forget(): void;
}

/**
 * `state` is what every update answers (the run's `state`/`progress` query); `showDetails`
 * re-renders the current details only: a refused signal must add no command, since histories
 * recorded before it ignored such signals silently.
 */
export function operatorActions(state: () => unknown, showDetails: () => void): OperatorActions {
  let ignored: string | null = null;
  // A copy: the answer is serialized after the handler returns, and the run may move on first.
  const snapshot = () => JSON.parse(JSON.stringify(state())) as unknown;
  const declared: (() => void)[] = [];
  return {
    accept<Arg>(spec: OperatorActionSpec<Arg, unknown>) {
      declared.push(() => register(spec));
    },
    listen: () => declared.splice(0).forEach((register) => register()),
    ignored: () => (ignored === null ? '' : ` · ${ignored}`),
    forget: () => void (ignored = null),
  };

  function register<Arg>(spec: OperatorActionSpec<Arg, unknown>) {
    const name = spec.update.name;
    setHandler(
      spec.update,
      async (arg: Arg) => {
        const settled = spec.apply(arg);
        if (settled) await condition(settled);
        return snapshot();
      },
      {
        validator: (arg: Arg) => {
          const refusal = malformed(arg, spec) ?? spec.check(arg);
          if (refusal !== null) throw refusalFailure(refusal);
        },
      },
    );
    setHandler(spec.signal as SignalDefinition<[Arg?]>, (sent?: Arg) => {
      const arg = (sent ?? spec.signalDefault) as Arg;
      const refusal = spec.check(arg);
      if (refusal === null || (NEWER_RULES.has(refusal.code) && !patched(OPERATOR_RULES_PATCH))) {
        spec.apply(arg);
        return;
      }
      const by = actor(arg);
      log.warn(`Signal ${name} refused: ${refusal.code}`, { signal: name, by, code: refusal.code, reason: refusal.message });
      ignored = `ignored signal ${name} from ${by}: ${refusal.code} — ${refusal.message}`;
      showDetails();
    });
  }
}

function malformed<Arg>(arg: Arg, spec: OperatorActionSpec<Arg, unknown>): Refusal | null {
  const by = (arg as { by?: unknown } | undefined)?.by;
  if (typeof by !== 'string' || by.trim() === '') return { code: 'invalid_request', message: 'who acts (`by`) is required' };
  const why = spec.malformed?.(arg) ?? null;
  return why === null ? null : { code: 'invalid_request', message: why };
}

function actor(arg: unknown): string {
  const by = (arg as { by?: unknown } | undefined)?.by;
  return typeof by === 'string' && by !== '' ? by : 'someone';
}
