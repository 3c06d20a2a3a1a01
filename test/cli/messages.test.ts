// Messages say what was given: the sign of an infinite value, the closed object's code and class.
import { createMoeLayer } from '../../lib';

const shape = { hidden: 8, intermediate: 8, experts: 4, topK: 2, weights: { seed: 3 } };

test('-Infinity in x is reported as -Infinity, with its position', async () => {
  const l = await createMoeLayer(shape);
  const x = new Float32Array(16).fill(0.5);
  x[11] = -Infinity;
  await expect(l.forward(x)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/token 1, hidden index 3 \(-Infinity\)/) });
  x[11] = Infinity;
  await expect(l.forward(x)).rejects.toMatchObject({ message: expect.stringMatching(/\(Infinity\)/) });
  l.close();
});

test('a -Infinity weight is named with its sign', async () => {
  const bias = new Float32Array(4);
  bias[2] = -Infinity;
  await expect(createMoeLayer({ ...shape, selectionBias: bias })).rejects.toMatchObject({
    code: 'ERR_INVALID_OPTION',
    message: expect.stringMatching(/selectionBias\[2\] is -Infinity/),
  });
});

test('a closed layer is an Error with ERR_CLOSED (as the README says), sync and async', async () => {
  const l = await createMoeLayer(shape);
  l.close();
  const sync = (() => {
    try {
      l.info();
    } catch (e) {
      return e as Error & { code: string };
    }
  })();
  expect(sync).toMatchObject({ code: 'ERR_CLOSED', name: 'Error' });
  await expect(l.forward(new Float32Array(8))).rejects.toMatchObject({ code: 'ERR_CLOSED', name: 'Error' });
});
