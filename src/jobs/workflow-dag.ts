/** The checks and the submission-time cascade that a workflow's graph gets before it is written. */
import { JobServiceError } from './errors.ts';
import type { NewEdge, NewStep } from './sql/workflows.ts';
import type { WorkflowStepInput } from './workflows.ts';

/** Refuses a graph with a cycle, naming one step on it (Kahn's algorithm). */
export function checkAcyclic(steps: readonly WorkflowStepInput[], parents: readonly number[][]): void {
  const children: number[][] = steps.map(() => []);
  const left = parents.map((list) => list.length);
  for (const [child, list] of parents.entries()) for (const parent of list) children[parent]!.push(child);
  const ready = left.flatMap((count, index) => (count === 0 ? [index] : []));
  let seen = 0;
  while (ready.length > 0) {
    const step = ready.pop()!;
    seen += 1;
    for (const child of children[step]!) if (--left[child]! === 0) ready.push(child);
  }
  if (seen === steps.length) return;
  const index = left.findIndex((count) => count > 0);
  throw new JobServiceError('BAD_USER_INPUT', `steps.${index}.dependsOn: the steps' dependencies form a cycle through "${steps[index]!.name}"`, `steps.${index}.dependsOn`);
}

/** Steps that depend, through `cancel` edges, on a step cancelled at submission are cancelled too. */
export function cancelDoomed(steps: NewStep[], edges: readonly NewEdge[]): void {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const queue = steps.filter((step) => step.status === 'cancelled');
  while (queue.length > 0) {
    const parent = queue.pop()!;
    for (const edge of edges) {
      if (edge.parentId !== parent.id) continue;
      const child = byId.get(edge.childId)!;
      if (child.status === 'cancelled') continue;
      if (edge.onFailure === 'cancel') {
        child.status = 'cancelled';
        queue.push(child);
      } else if (--child.parentsLeft === 0) child.status = 'pending';
    }
  }
}
