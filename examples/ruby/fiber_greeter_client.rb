# frozen_string_literal: true

# Many Greeter calls at once from the fibers of one thread, under the async gem's fiber
# scheduler: each call waits through the scheduler, so the others go on meanwhile.
# Usage: ruby fiber_greeter_client.rb TARGET [COUNT]
$LOAD_PATH.unshift(__dir__)
require "async"
require "helloworld_services"

target = ARGV.fetch(0, "localhost:50051")
count = Integer(ARGV.fetch(1, "20"))
stub = Helloworld::Greeter::Stub.new(target)

replies = Async do |task|
  calls = Array.new(count) do |i|
    task.async do
      stub.say_hello(Helloworld::HelloRequest.new(name: "fiber #{i}"), metadata: { "x-caller" => "a fiber" },
                                                                      timeout: 5).message
    end
  end
  calls.map(&:wait)
end.wait
puts "#{replies.size} replies, first: #{replies.first}, last: #{replies.last}"
