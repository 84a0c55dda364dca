import { scheduleNotFound, scheduleScope, type ScheduleView } from '../../schedules/service.ts';
import type { Builder } from '../builder.ts';
import { serviceCall } from '../errors.ts';

/** Schedules: recurring jobs of a kind, from a cron expression in a time zone (src/schedules). */
export function addScheduleTypes(builder: Builder) {
  const CatchUp = builder.enumType('CatchUp', {
    description: 'What becomes of ticks missed while no scheduler ran (later than SCHEDULE_MISSED_AFTER_MS).',
    values: {
      SKIP: { value: 'skip', description: 'None of them fires.' },
      ONE: { value: 'one', description: 'The latest of them fires, once.' },
      ALL: { value: 'all', description: 'The latest catchUpLimit of them fire, oldest first.' },
    } as const,
  });

  const Schedule = builder.objectRef<ScheduleView>('Schedule').implement({
    description: 'A job of a kind, made whenever a cron expression matches in a time zone: one job per tick, however many workers run.',
    fields: (t) => ({
      id: t.exposeID('id'),
      kind: t.exposeString('kind'),
      name: t.exposeString('name', { nullable: true, description: "A declared schedule's name within its kind; null for one made over the API." }),
      declared: t.exposeBoolean('declared', { description: "Made from the kind's definition; the next start makes it again as declared." }),
      input: t.field({ type: 'JSON', description: 'The input of each job it makes.', resolve: (schedule) => schedule.input }),
      cron: t.exposeString('cron'),
      timeZone: t.exposeString('timeZone'),
      catchUp: t.expose('catchUp', { type: CatchUp }),
      catchUpLimit: t.exposeInt('catchUpLimit'),
      paused: t.exposeBoolean('paused'),
      lastFireAt: t.expose('lastFireAt', {
        type: 'DateTime',
        nullable: true,
        description: 'The latest tick settled: fired, or passed over by the catch-up policy.',
      }),
      nextFireAt: t.expose('nextFireAt', { type: 'DateTime', nullable: true, description: 'The next tick; null while paused.' }),
      lastJobId: t.exposeID('lastJobId', { nullable: true, description: 'The job of the latest tick that made one.' }),
      createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
  });

  const CreateScheduleInput = builder.inputType('CreateScheduleInput', {
    fields: (t) => ({
      kind: t.string({ required: true, description: 'The name of a kind the service runs (see `kinds`).' }),
      input: t.field({ type: 'JSON', required: false, description: "Each job's input, checked now by the kind's input schema." }),
      cron: t.string({
        required: true,
        description: 'Five fields (minute hour day month weekday), or six with seconds first, as croner reads them: "*/5 * * * *", "0 30 9 * * MON-FRI".',
      }),
      timeZone: t.string({ required: false, description: 'An IANA time zone, such as Europe/Berlin. Default: UTC.' }),
      catchUp: t.field({ type: CatchUp, required: false, description: 'Default: ONE.' }),
      catchUpLimit: t.int({ required: false, description: 'For ALL: 1 to 1000, default 10.' }),
      paused: t.boolean({ required: false, description: 'Made paused: no tick fires until resumed.' }),
    }),
  });

  builder.queryField('schedules', (t) =>
    t.field({
      type: [Schedule],
      description: 'Your schedules, oldest first.',
      resolve: (_root, _args, { jobs, caller }) => serviceCall(() => jobs.schedules.list(scheduleScope(caller))),
    }),
  );

  builder.queryField('schedule', (t) =>
    t.field({
      type: Schedule,
      nullable: true,
      description: 'One of your schedules. An unknown id is a NOT_FOUND error.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => {
          const schedule = await jobs.schedules.get(String(id), scheduleScope(caller));
          if (!schedule) throw scheduleNotFound(String(id));
          return schedule;
        }),
    }),
  );

  // Nullable, as every mutation field (see addJob): one failing mutation must not null the others.
  builder.mutationField('createSchedule', (t) =>
    t.field({
      type: Schedule,
      nullable: true,
      description: 'Makes a schedule, owned by your API key. A wrong field is BAD_USER_INPUT, naming it in extensions.field.',
      args: { input: t.arg({ type: CreateScheduleInput, required: true }) },
      resolve: (_root, { input }, { jobs, caller }) => serviceCall(() => jobs.schedules.create(input, caller.owner)),
    }),
  );

  for (const [field, paused, description] of [
    ['pauseSchedule', true, 'No tick fires until it is resumed.'],
    ['resumeSchedule', false, 'It fires again from its next tick; the ticks of the pause do not fire.'],
  ] as const) {
    builder.mutationField(field, (t) =>
      t.field({
        type: Schedule,
        nullable: true,
        description,
        args: { id: t.arg.id({ required: true }) },
        resolve: (_root, { id }, { jobs, caller }) => serviceCall(() => jobs.schedules.setPaused(String(id), scheduleScope(caller), paused)),
      }),
    );
  }

  builder.mutationField('deleteSchedule', (t) =>
    t.field({
      type: 'ID',
      nullable: true,
      description: 'Deletes a schedule and answers its id; the jobs it made stay.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, { jobs, caller }) =>
        serviceCall(async () => {
          await jobs.schedules.delete(String(id), scheduleScope(caller));
          return String(id).toLowerCase();
        }),
    }),
  );
}
