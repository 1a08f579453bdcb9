/**
 * Charts on Apache ECharts, tree-shaken to the parts the dashboard uses (box plot, line, bar; SVG
 * renderer, so the charts are crisp in screenshots and their shapes are in the DOM for tests).
 * mountChart() sets data-rendered="1" on the element once ECharts has finished drawing.
 */
import { BarChart, BoxplotChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TitleComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { SVGRenderer } from "echarts/renderers";

echarts.use([BoxplotChart, LineChart, BarChart, GridComponent, LegendComponent, TitleComponent, TooltipComponent, SVGRenderer]);

export interface Chart {
  update(option: Record<string, unknown>): void;
  destroy(): void;
}

export function mountChart(el: HTMLElement, option: Record<string, unknown>): Chart {
  const chart = echarts.init(el, null, { renderer: "svg" });
  chart.on("finished", () => {
    el.dataset.rendered = "1";
  });
  chart.setOption(option as echarts.EChartsCoreOption);
  const observer = new ResizeObserver(() => chart.resize());
  observer.observe(el);
  return {
    update(next) {
      chart.setOption(next as echarts.EChartsCoreOption, { notMerge: true });
    },
    destroy() {
      observer.disconnect();
      chart.dispose();
    },
  };
}
